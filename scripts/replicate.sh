#!/usr/bin/env bash
# replicate.sh: copy a live volume or image to a backup host over ssh, the
# blkpipe way, as one readable script to run from cron or a systemd timer
# (examples in scripts/examples/). It is the old recipe
#
#     lvcreate -s ...; dd if=snap | ssh backup 'dd of=...'; lvremove ...;
#     rsync -a /etc/backuppc/ backup:/etc/backuppc/
#
# with each step replaced by a blkpipe tool:
#
#     snapctl run SOURCE -- bash -c 'set -o pipefail
#         blkcat -z lz4 "$SNAP" | pvcat -q -L RATE | ssh HOST blkwrite TARGET'
#     rsync -a --delete CONFIG_DIR/ HOST:CONFIG_DIR/
#
# snapctl makes the snapshot and removes it however the copy ends; blkcat
# reads it and frames the stream (checksums, zero runs, compression, the
# SHA-256 of the source at the end); pvcat limits the rate; blkwrite on the
# backup host writes the target and verifies the digest. The script prints
# one summary line on stdout (source, target, bytes, time, rate, verified
# digest) and exits non-zero if any stage failed, naming the stage.
#
# Usage: replicate.sh [OPTIONS] [SOURCE HOST TARGET]
#
#   -c, --config FILE     read settings from FILE (bash syntax, see below);
#                         options given on the command line win
#   --source PATH         volume or image to copy (SOURCE)
#   --host [USER@]HOST    backup host, as ssh takes it (HOST)
#   --target PATH         device or file on the backup host (TARGET)
#   --compress lz4|zstd|zstd:N|none
#                         stream compression (default lz4); none still frames
#                         and verifies the stream
#   --raw                 send raw dd data instead of a framed stream (no
#                         verification; for a receiver without framing)
#   --rate RATE           limit the stream to RATE bytes/s (pvcat -L: 50M, 1G)
#   --config-dir DIR      after a good copy, rsync -a --delete DIR/ to the same
#                         path on HOST (repeatable)
#   --ssh CMD             ssh command (default: ssh); word-split
#   --ssh-opt OPT         extra ssh option, e.g. "-i /root/.ssh/backup_key"
#                         (repeatable; word-split)
#   --blkwrite PATH       blkwrite on the backup host (default: blkwrite)
#   --no-snapshot         read SOURCE directly (an unmounted volume or an image
#                         nothing writes to) instead of a snapctl snapshot
#   --snapshot-opt OPT    option for snapctl run, e.g. "--backend reflink" or
#                         "--freeze /srv" (repeatable; word-split)
#   --log FILE            also append the summary line to FILE
#   -n, --dry-run         print the commands instead of running them
#   -v, --verbose         show the tools' own reports (dd statistics)
#   -h, --help            this help
#
# Config file (sourced by bash; every key optional, command line wins):
#   SOURCE=/dev/vg0/data  HOST=root@backup  TARGET=/dev/vg1/data
#   COMPRESS=lz4  RAW=no  RATE=  CONFIG_DIRS="/etc/backuppc"
#   SSH=ssh  SSH_OPTS="-i /root/.ssh/blkpipe_ed25519"  BLKWRITE=blkwrite
#   SNAPSHOT=yes  SNAPSHOT_OPTS="--freeze /srv"  LOG=/var/log/blkpipe.log
#
# Exit status: 0 the copy (and config rsync) succeeded and, unless --raw,
# blkwrite verified the digest; 1 a stage failed (the summary names it);
# 2 usage or configuration error.
set -euo pipefail

me=replicate
# The comment block from "# Usage:" to its end, "2 usage or configuration error."
usage() { sed -n '/^# Usage:/,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "$me: $*" >&2; exit 2; }

SOURCE= HOST= TARGET= COMPRESS=lz4 RAW=no RATE= CONFIG_DIRS= SSH=ssh SSH_OPTS=
BLKWRITE=blkwrite SNAPSHOT=yes SNAPSHOT_OPTS= LOG= DRY=no VERBOSE=no

# The config file first, so that the command line overrides it.
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case ${args[i]} in
	-c | --config)
		[ $((i + 1)) -lt ${#args[@]} ] || die "option '${args[i]}' needs a value"
		cfg=${args[i + 1]}
		[ -r "$cfg" ] || die "cannot read config file '$cfg'"
		# shellcheck disable=SC1090
		. "$cfg"
		;;
	--config=*)
		cfg=${args[i]#*=}
		[ -r "$cfg" ] || die "cannot read config file '$cfg'"
		# shellcheck disable=SC1090
		. "$cfg"
		;;
	esac
done

need() { [ $# -ge 2 ] || die "option '$1' needs a value"; }
pos=()
while [ $# -gt 0 ]; do
	opt=$1
	case $opt in
	--*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
	esac
	case $opt in
	-c | --config) need "$@"; shift 2 ;;
	--source) need "$@"; SOURCE=$2; shift 2 ;;
	--host) need "$@"; HOST=$2; shift 2 ;;
	--target) need "$@"; TARGET=$2; shift 2 ;;
	--compress) need "$@"; COMPRESS=$2; shift 2 ;;
	--raw) RAW=yes; shift ;;
	--rate) need "$@"; RATE=$2; shift 2 ;;
	--config-dir) need "$@"; CONFIG_DIRS="${CONFIG_DIRS:+$CONFIG_DIRS }$2"; shift 2 ;;
	--ssh) need "$@"; SSH=$2; shift 2 ;;
	--ssh-opt) need "$@"; SSH_OPTS="${SSH_OPTS:+$SSH_OPTS }$2"; shift 2 ;;
	--blkwrite) need "$@"; BLKWRITE=$2; shift 2 ;;
	--no-snapshot) SNAPSHOT=no; shift ;;
	--snapshot-opt) need "$@"; SNAPSHOT_OPTS="${SNAPSHOT_OPTS:+$SNAPSHOT_OPTS }$2"; shift 2 ;;
	--log) need "$@"; LOG=$2; shift 2 ;;
	-n | --dry-run) DRY=yes; shift ;;
	-v | --verbose) VERBOSE=yes; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; pos+=("$@"); break ;;
	-*) die "unknown option '$opt' (see --help)" ;;
	*) pos+=("$opt"); shift ;;
	esac
done
case ${#pos[@]} in
0) ;;
3) SOURCE=${pos[0]} HOST=${pos[1]} TARGET=${pos[2]} ;;
*) die "give SOURCE HOST TARGET together, or none of them (see --help)" ;;
esac
[ -n "$SOURCE" ] || die "no source (SOURCE or --source)"
[ -n "$HOST" ] || die "no backup host (HOST or --host)"
[ -n "$TARGET" ] || die "no target (TARGET or --target)"

# The reader: framed unless --raw, compressed unless none. Its dd report
# (stderr, kept in a file) says how far it got when a copy fails.
blkcat=(blkcat)
if [ "$RAW" != yes ]; then
	case $COMPRESS in
	none) blkcat+=(--frame) ;;
	lz4 | zstd | zstd:[0-9]*) blkcat+=(-z "$COMPRESS") ;;
	*) die "invalid --compress '$COMPRESS' (lz4, zstd, zstd:LEVEL or none)" ;;
	esac
	# blkcat's own check of the level (zstd:1 to zstd:22), here rather
	# than after the snapshot and the connection, where it failed the run
	# as a stage (exit 1) with an empty stream sent.
	if command -v blkcat >/dev/null && ! err=$(blkcat -q "${blkcat[@]:1}" /dev/null 2>&1 >/dev/null); then
		die "invalid --compress '$COMPRESS' (${err#blkcat: })"
	fi
fi

# ssh: the user's options first (for -o, ssh keeps the first value), then
# ours: never prompt, and give up on a dead network instead of hanging a
# cron job forever.
read -r -a ssh <<<"$SSH"
read -r -a ssh_opts <<<"$SSH_OPTS"
ssh+=("${ssh_opts[@]}" -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
# The remote command is one string for the remote shell (or for a
# forced-command blkwrite --allow, which accepts plain quoted words only).
printf -v remote '%q ' "$BLKWRITE" "$TARGET"
remote=${remote% }

# pvcat limits the rate; without --rate it only runs when present, to show
# progress on a terminal.
pv=()
if [ -n "$RATE" ]; then
	command -v pvcat >/dev/null || [ "$DRY" = yes ] || die "--rate needs pvcat on PATH"
	# pvcat's own parse of RATE, before the snapshot and the connection.
	if command -v pvcat >/dev/null && ! err=$(pvcat -q -L "$RATE" </dev/null 2>&1 >/dev/null); then
		die "invalid --rate '$RATE' (${err#pvcat: })"
	fi
	pv=(pvcat -q -L "$RATE")
elif [ -t 2 ] && command -v pvcat >/dev/null; then
	pv=(pvcat)
fi

snap=()
if [ "$SNAPSHOT" = yes ]; then
	read -r -a snap_opts <<<"$SNAPSHOT_OPTS"
	snap=(snapctl run "${snap_opts[@]}" "$SOURCE" --)
	command -v snapctl >/dev/null || [ "$DRY" = yes ] ||
		die "snapctl not on PATH (install it, or use --no-snapshot for a source nothing writes to)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/replicate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The pipeline, as bash -c runs it (under snapctl, $SNAP is the snapshot).
q() { printf '%q ' "$@"; }
if [ "$SNAPSHOT" = yes ]; then
	src='$SNAP'
else
	src=$(printf %q "$SOURCE")
fi
pipeline="set -o pipefail
src=$src
$(q "${blkcat[@]}")\"\$src\" 2>$(q "$tmp/blkcat.err")"
stages=(blkcat)
if [ ${#pv[@]} -gt 0 ]; then
	pipeline+=" | $(q "${pv[@]}")"
	stages+=(pvcat)
fi
pipeline+=" | $(q "${ssh[@]}" "$HOST" "$remote")2>$(q "$tmp/remote.err")
st=(\"\${PIPESTATUS[@]}\")
echo \"\${st[*]}\" >$(q "$tmp/status")
for s in \"\${st[@]}\"; do [ \"\$s\" = 0 ] || exit 1; done"
stages+=(ssh/blkwrite)

if [ "$DRY" = yes ]; then
	[ ${#snap[@]} -eq 0 ] || q "${snap[@]}"
	printf "bash -c '%s'\n" "$pipeline"
	for d in $CONFIG_DIRS; do
		printf 'rsync -a --delete -e %q %q %q\n' "${ssh[*]}" "${d%/}/" "$HOST:${d%/}/"
	done
	exit 0
fi

# Size of the source, for the summary: a complete copy moved all of it.
if [ -b "$SOURCE" ]; then
	size=$(blockdev --getsize64 "$SOURCE")
elif [ -f "$SOURCE" ]; then
	size=$(stat -c %s "$SOURCE")
else
	die "source '$SOURCE' is neither a block device nor a regular file"
fi

now() { echo "${EPOCHREALTIME/,/.}"; } # bash 5: no date(1) with %N needed
start=$(now)
rc=0
"${snap[@]}" bash -c "$pipeline" || rc=$?
end=$(now)
secs=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')

summary() {
	echo "$1"
	if [ -n "$LOG" ]; then
		echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $1" >>"$LOG"
	fi
}
show() { # the tools' own messages, indented
	for f in "$tmp/blkcat.err" "$tmp/remote.err"; do
		[ -s "$f" ] && sed "s/^/$me:   /" "$f" >&2
	done
	return 0
}
what="$SOURCE -> $HOST:$TARGET"

fail=
if [ -s "$tmp/status" ]; then
	read -r -a st <"$tmp/status"
	for i in "${!st[@]}"; do
		if [ "${st[i]}" != 0 ]; then
			fail+="${fail:+, }${stages[i]:-stage $i} exited ${st[i]}"
		fi
	done
elif [ $rc -ne 0 ]; then
	# No status: the pipeline never finished (snapctl failed before it,
	# or a signal cut it short, snapctl then exiting 130).
	who=snapctl
	[ "$SNAPSHOT" = yes ] || who="the pipeline (bash)"
	if [ -e "$tmp/blkcat.err" ]; then
		fail="$who exited $rc during the copy"
	else
		fail="$who exited $rc before the copy ran"
	fi
	[ $rc -ne 130 ] || fail+=" (interrupted)"
fi
[ -n "$fail" ] || [ $rc -eq 0 ] || fail="snapctl exited $rc"
digest=
if [ "$RAW" != yes ]; then
	digest=$(sed -n 's/^blkwrite: verified sha256 \([0-9a-f]\{64\}\)$/\1/p' "$tmp/remote.err" | tail -n 1)
	[ -n "$fail" ] || [ -n "$digest" ] || fail="blkwrite reported no verified digest"
fi
if [ -n "$fail" ]; then
	show
	read_bytes=$(sed -n 's/^\([0-9]*\) bytes .*/\1/p' "$tmp/blkcat.err" 2>/dev/null | tail -n 1)
	summary "$me: FAILED $what after ${secs} s${read_bytes:+ ($read_bytes bytes read)}: $fail"
	exit 1
fi
[ "$VERBOSE" = no ] || show

for d in $CONFIG_DIRS; do
	if ! rsync -a --delete -e "${ssh[*]}" "${d%/}/" "$HOST:${d%/}/" >&2; then
		summary "$me: FAILED $what: copy done, but rsync of $d to $HOST failed"
		exit 1
	fi
done

rate=$(awk -v b="$size" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
proof="raw, not verified"
[ -z "$digest" ] || proof="sha256 $digest"
summary "$me: ok $what $size bytes in $secs s, $rate MB/s, $proof${CONFIG_DIRS:+, synced $CONFIG_DIRS}"
