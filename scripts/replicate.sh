#!/usr/bin/env bash
# SC1007: "X= Y=" sets empty values on purpose. SC2016: the pipeline's
# $SNAP, $d and $(mktemp) are expanded by the bash that runs it, not here.
# shellcheck disable=SC1007,SC2016
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
#         blkcat -z lz4 "$SNAP" | pvcat -q --wire -L RATE | ssh HOST blkwrite TARGET'
#     rsync -a CONFIG_DIR/ HOST:CONFIG_DIR/
#
# snapctl makes the snapshot and removes it however the copy ends; blkcat
# reads it and frames the stream (checksums, zero runs, compression, the
# BLAKE3 of the source at the end); pvcat limits the rate and counts the
# bytes sent; blkwrite on the backup host writes the target and verifies the
# digest. On a terminal a second pvcat, between a raw blkcat reader and a
# framing blkcat, shows %, rate and ETA in source bytes (blkcat reads and
# compresses in one process, so only this split lets pvcat count source
# bytes while the reader keeps O_DIRECT); off a terminal (cron) the pipeline
# is the one above and shows nothing. The script prints one summary line on
# stdout (source, target, bytes, time, rate, verified digest) or one FAILED
# line naming the stage and the cause, and exits non-zero on any failure.
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
#   --mode auto|full      auto (default): keep the snapshot of each verified
#                         copy as the base of the next run (snapctl run
#                         --keep-base), and send only what changed since it:
#                         a changed-block delta where the snapshots' metadata
#                         lists the changes (LVM thin, classic LVM, reflink
#                         images on XFS/btrfs, btrfs snapshots), else a sums
#                         delta (blkcat --sums on HOST), else a full copy; the
#                         first run is a full copy; a changed-block delta a
#                         run left interrupted is resumed by the next one,
#                         and a first copy cut short onto a device is
#                         followed by a sums delta against what landed
#                         (docs/NIGHTLY.md). full: always a full copy,
#                         and no snapshot is kept
#   --rate RATE           limit the stream to RATE bytes/s (pvcat -L: 50M, 1G)
#   --config-dir DIR      after a good copy, rsync -a DIR/ to the same path on
#                         HOST (repeatable)
#   --config-delete       rsync --delete: also remove files on HOST that are
#                         gone from DIR (off by default)
#   --ssh CMD             ssh command (default: ssh); word-split
#   --ssh-opt OPT         extra ssh option, e.g. "-i /root/.ssh/backup_key"
#                         (repeatable; word-split)
#   --blkwrite PATH       blkwrite on the backup host (default: blkwrite)
#   --keep N              blkwrite --keep N: before writing, keep the target's
#                         last verified copy as a snapshot version on the
#                         backup host, and the newest N once this copy
#                         verifies; the summary names the version kept, a
#                         FAILED line the last good one. Leave it out when
#                         the backup key's forced command sets --keep (the
#                         client may not change it)
#   --no-snapshot         read SOURCE directly (an unmounted volume or an image
#                         nothing writes to) instead of a snapctl snapshot
#   --snapshot-opt OPT    option for snapctl run, e.g. "--backend reflink" or
#                         "--freeze /srv" (repeatable; word-split)
#   --log FILE            also append the summary (or FAILED, SKIPPED) line to
#                         FILE, with a UTC time stamp
#   --lock FILE           flock -n FILE for the run: when another run holds
#                         it, print and log a SKIPPED line and exit 1
#   --metrics FILE        write a Prometheus textfile (node_exporter's textfile
#                         collector) with the run's result, bytes and time
#   --progress            show pvcat's display even when stderr is not a
#                         terminal (it shows by default only on a terminal)
#   -q, --quiet           print nothing unless the run fails (for cron: a
#                         mail only then); the log still gets every line
#   -n, --dry-run         print the commands instead of running them
#   -v, --verbose         show the tools' own reports (dd statistics)
#   -h, --help            this help
#
# Config file (sourced by bash; every key optional, command line wins):
#   SOURCE=/dev/vg0/data  HOST=root@backup  TARGET=/dev/vg1/data
#   COMPRESS=lz4  RAW=no  MODE=auto  RATE=  CONFIG_DIRS="/etc/backuppc"  CONFIG_DELETE=no
#   SSH=ssh  SSH_OPTS="-i /root/.ssh/blkpipe_ed25519"  BLKWRITE=blkwrite  KEEP=
#   SNAPSHOT=yes  SNAPSHOT_OPTS="--freeze /srv"  LOG=/var/log/blkpipe.log
#   LOCK=/run/lock/blkpipe-data.lock  METRICS=/var/lib/node_exporter/blkpipe-data.prom
#   QUIET=no
#
# Exit status: 0 the copy (and config rsync) succeeded and, unless --raw,
# blkwrite verified the digest; 1 a stage failed, or the run was skipped
# (the FAILED or SKIPPED line names the stage and the cause);
# 2 usage or configuration error.
set -euo pipefail

me=replicate
# The comment block from "# Usage:" to its end, "2 usage or configuration error."
usage() { sed -n '/^# Usage:/,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "$me: $*" >&2; exit 2; }

SOURCE= HOST= TARGET= COMPRESS=lz4 RAW=no MODE=auto RATE= CONFIG_DIRS= CONFIG_DELETE=no
SSH=ssh SSH_OPTS= BLKWRITE=blkwrite KEEP= SNAPSHOT=yes SNAPSHOT_OPTS= LOG= LOCK=
METRICS= QUIET=no PROGRESS=auto DRY=no VERBOSE=no

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
	--mode) need "$@"; MODE=$2; shift 2 ;;
	--rate) need "$@"; RATE=$2; shift 2 ;;
	--config-dir) need "$@"; CONFIG_DIRS="${CONFIG_DIRS:+$CONFIG_DIRS }$2"; shift 2 ;;
	--config-delete) CONFIG_DELETE=yes; shift ;;
	--ssh) need "$@"; SSH=$2; shift 2 ;;
	--ssh-opt) need "$@"; SSH_OPTS="${SSH_OPTS:+$SSH_OPTS }$2"; shift 2 ;;
	--blkwrite) need "$@"; BLKWRITE=$2; shift 2 ;;
	--keep) need "$@"; KEEP=$2; shift 2 ;;
	--no-snapshot) SNAPSHOT=no; shift ;;
	--snapshot-opt) need "$@"; SNAPSHOT_OPTS="${SNAPSHOT_OPTS:+$SNAPSHOT_OPTS }$2"; shift 2 ;;
	--log) need "$@"; LOG=$2; shift 2 ;;
	--lock) need "$@"; LOCK=$2; shift 2 ;;
	--metrics) need "$@"; METRICS=$2; shift 2 ;;
	--progress) PROGRESS=yes; shift ;;
	-q | --quiet) QUIET=yes; shift ;;
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
case $MODE in
auto | full) ;;
*) die "invalid --mode '$MODE' (auto or full)" ;;
esac
for kv in "RAW=$RAW" "SNAPSHOT=$SNAPSHOT" "CONFIG_DELETE=$CONFIG_DELETE" "QUIET=$QUIET"; do
	case ${kv#*=} in
	yes | no) ;;
	*) die "invalid ${kv%%=*}='${kv#*=}' (yes or no)" ;;
	esac
done

case $KEEP in
'') ;;
*[!0-9]* | 0*) die "invalid --keep '$KEEP' (the number of versions to keep, 1 or more)" ;;
esac
[ -z "$KEEP" ] || [ "$RAW" != yes ] || die "--keep needs a verified copy: it cannot be combined with --raw"

# The framing options: none for --raw, else --frame or -z CODEC.
frame=()
if [ "$RAW" != yes ]; then
	case $COMPRESS in
	none) frame=(--frame) ;;
	lz4 | zstd | zstd:[0-9]*) frame=(-z "$COMPRESS") ;;
	*) die "invalid --compress '$COMPRESS' (lz4, zstd, zstd:LEVEL or none)" ;;
	esac
	# blkcat's own check of the level (zstd:1 to zstd:22), here rather
	# than after the snapshot and the connection, where it failed the run
	# as a stage (exit 1) with an empty stream sent.
	if command -v blkcat >/dev/null && ! err=$(blkcat -q "${frame[@]}" /dev/null 2>&1 >/dev/null); then
		err=${err%%$'\n'*}
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
keep=()
[ -z "$KEEP" ] || keep=(--keep "$KEEP")
printf -v remote '%q ' "$BLKWRITE" "${keep[@]}" "$TARGET"
remote=${remote% }

# pvcat on the wire limits the rate and counts the bytes sent (its last
# --json record; --wire, or it would count the framed stream's source
# bytes); without --rate it only runs when present. The display is
# a separate pvcat that counts source bytes, on a terminal only: -q
# silences it, and no rate limit hides it.
if [ -n "$RATE" ]; then
	command -v pvcat >/dev/null || [ "$DRY" = yes ] || die "--rate needs pvcat on PATH"
	# pvcat's own parse of RATE, before the snapshot and the connection.
	if command -v pvcat >/dev/null && ! err=$(pvcat -q -L "$RATE" </dev/null 2>&1 >/dev/null); then
		err=${err%%$'\n'*}
		die "invalid --rate '$RATE' (${err#pvcat: })"
	fi
fi
wire=()
if [ -n "$RATE" ] || command -v pvcat >/dev/null; then
	wire=(pvcat -q --wire ${RATE:+-L "$RATE"})
fi
display=()
if [ "$QUIET" = no ] && command -v pvcat >/dev/null; then
	if [ "$PROGRESS" = yes ]; then
		display=(pvcat -f)
	elif [ -t 2 ]; then
		display=(pvcat)
	fi
fi

# Changed blocks need a lineage of snapshots (one per source and target)
# and a framed stream.
changed=no
[ "$MODE" = auto ] && [ "$SNAPSHOT" = yes ] && [ "$RAW" = no ] && changed=yes
snap=()
if [ "$SNAPSHOT" = yes ]; then
	read -r -a snap_opts <<<"$SNAPSHOT_OPTS"
	if [ "$changed" = yes ]; then
		lineage=replicate-$(printf '%s\n' "$SOURCE" "$HOST" "$TARGET" | sha256sum | cut -c1-16)
		snap_opts+=(--keep-base "$lineage")
	fi
	snap=(snapctl run "${snap_opts[@]}" "$SOURCE" --)
	command -v snapctl >/dev/null || [ "$DRY" = yes ] ||
		die "snapctl not on PATH (install it, or use --no-snapshot for a source nothing writes to)"
fi

# The pipeline, as bash -c runs it (under snapctl, $SNAP is the snapshot).
# $d holds the tools' messages and the stages' exit status; a dry run makes
# its own, so that the printed commands can be pasted and run.
q() { printf '%q ' "$@"; }
pipeline() { # $1: the line that sets d; sets script and stages
	local src
	if [ "$SNAPSHOT" = yes ]; then
		src='$SNAP'
	else
		src=$(printf %q "$SOURCE")
	fi
	local p="set -o pipefail
src=$src
$1
"
	stages=(blkcat)
	if [ "$changed" = yes ]; then
		# send picks the path: changed blocks from $BASE (snapctl
		# run --keep-base) when snapctl lists the changes, else a sums
		# delta against the target, else (first run) a full copy. A
		# path that fails before sending anything (blkcat says
		# "nothing was sent") falls through to the next on the same
		# stream. $d/path says which ran and why. A changed-block delta
		# that an earlier run left interrupted (blkwrite has a resume
		# point of one) is resumed first: blkcat refuses, sending
		# nothing, unless this snapshot's blocks before the point are
		# the ones written there, and the whole delta runs instead.
		printf -v sums '%q ' blkcat -q --sums "$TARGET"
		printf -v point '%q ' "$BLKWRITE" --resume-point "$TARGET"
		p+="full() { echo \"full (\$1)\" >\"\$d/path\"; $(q blkcat "${frame[@]}")\"\$src\" 2>\"\$d/blkcat.err\"; }
sent_nothing() { grep -q 'nothing was sent\$' \"\$d/blkcat.err\"; }
send() {
	local why=\${BASE_NOTE:-no base}
	if [ -n \"\${BASE:-}\" ]; then
		if snapctl changes \"\$BASE\" \"\$src\" >\"\$d/changes\" 2>\"\$d/changes.err\"; then
			local how=\$(sed -n 's/^snapctl: changes: .* from //p' \"\$d/changes.err\") tok off
			tok=\$($(q "${ssh[@]}" "$HOST" "${point% }")</dev/null 2>/dev/null) || tok=
			case \$tok in
			*:*:*:*:*:*)
				off=\${tok#*:} off=\${off%%:*}
				echo \"changed-blocks (\$how, resumed at byte \$off)\" >\"\$d/path\"
				$(q blkcat "${frame[@]}")--changed-from \"\$BASE\" --changes \"\$d/changes\" --resume \"\$tok\" \"\$src\" 2>\"\$d/blkcat.err\" && return 0
				sent_nothing || return 1
				how+=\", not resumed: \$(sed -n '\$s/^blkcat: //p' \"\$d/blkcat.err\")\" ;;
			esac
			echo \"changed-blocks (\$how)\" >\"\$d/path\"
			$(q blkcat "${frame[@]}")--changed-from \"\$BASE\" --changes \"\$d/changes\" \"\$src\" 2>\"\$d/blkcat.err\" && return 0
			sent_nothing || return 1
			why=\$(sed -n '\$s/^blkcat: //p' \"\$d/blkcat.err\")
		else
			why=\$(sed -n '\$s/^snapctl: //p' \"\$d/changes.err\")
		fi
	fi
	case \$why in
	'first run of lineage '*)
		# A first copy cut short left part of an older snapshot on the
		# target (blkwrite has its resume point): a sums delta sends only
		# what differs from it.
		local tok
		tok=\$($(q "${ssh[@]}" "$HOST" "${point% }")</dev/null 2>/dev/null) || tok=
		case \$tok in
		*:*) why=\"first copy interrupted at byte \$(echo \"\$tok\" | cut -d: -f2): only what differs is sent\" ;;
		*) full 'first run'; return ;;
		esac ;;
	esac
	echo \"sums-delta (\$why)\" >\"\$d/path\"
	$(q blkcat "${frame[@]}")--against <($(q "${ssh[@]}" "$HOST" "${sums% }")2>\"\$d/sums.err\") \"\$src\" 2>\"\$d/blkcat.err\" && return 0
	sent_nothing || return 1
	full \"no sums delta: \$(sed -n '\$s/^blkcat: //p' \"\$d/blkcat.err\")\"
}
send"
	elif [ ${#display[@]} -gt 0 ]; then
		# A raw reader, the display on source bytes, then the framer.
		p+="blkcat \"\$src\" 2>\"\$d/blkcat.err\" | $(q "${display[@]}")-s @\"\$src\"$tty"
		stages+=(pvcat)
		if [ ${#frame[@]} -gt 0 ]; then
			p+=" | $(q blkcat "${frame[@]}")2>\"\$d/frame.err\""
			stages+=("blkcat ${frame[*]}")
		fi
	else
		p+="$(q blkcat "${frame[@]}")\"\$src\" 2>\"\$d/blkcat.err\""
	fi
	if [ ${#wire[@]} -gt 0 ]; then
		p+=" | $(q "${wire[@]}")--json-fd 3 3>\"\$d/wire.json\""
		stages+=(pvcat)
	fi
	p+=" | $(q "${ssh[@]}" "$HOST" "$remote")2>\"\$d/remote.err\"
st=(\"\${PIPESTATUS[@]}\")
echo \"\${st[*]}\" >\"\$d/status\"
for s in \"\${st[@]}\"; do [ \"\$s\" = 0 ] || exit 1; done"
	stages+=(ssh/blkwrite)
	script=$p
}
rsync_cmd() { # $1: the directory
	rsync=(rsync -a)
	[ "$CONFIG_DELETE" = no ] || rsync+=(--delete)
	rsync+=(-e "${ssh[*]}" "${1%/}/" "$HOST:${1%/}/")
}

if [ "$DRY" = yes ]; then
	tty=
	pipeline 'd=$(mktemp -d "${TMPDIR:-/tmp}/replicate.XXXXXX"); echo "messages in $d" >&2'
	[ ${#snap[@]} -eq 0 ] || q "${snap[@]}"
	# Single quotes inside the script, closed and reopened: '\''.
	printf "bash -c '%s'\n" "${script//\'/\'\\\'\'}"
	for dir in $CONFIG_DIRS; do
		rsync_cmd "$dir"
		line=$(q "${rsync[@]}")
		echo "${line% }"
	done
	exit 0
fi

what="$SOURCE -> $HOST:$TARGET"
now() { echo "${EPOCHREALTIME/,/.}"; } # bash 5: no date(1) with %N needed
start=$(now)
secs=

# log LINE: LINE with a UTC time stamp at the end of --log.
log() {
	[ -z "$LOG" ] || echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $1" >>"$LOG" ||
		echo "$me: cannot append to log '$LOG'" >&2
}

# metrics RESULT: the Prometheus textfile, written to FILE.tmp and renamed
# over FILE so that node_exporter never reads half of it. On a failure the
# last success time is the one the previous file held (0: none yet).
metrics() {
	[ -n "$METRICS" ] || return 0
	local result=$1 t last=0 labels pth=${path:-full}
	pth=${pth%% *} # changed-blocks, sums-delta or full
	t=$(date +%s)
	if [ "$result" = 0 ]; then
		last=$t
	elif [ -r "$METRICS" ]; then
		last=$(sed -n 's/^blkpipe_replicate_last_success_timestamp_seconds\({[^}]*}\)\{0,1\} \([0-9.e+]*\)$/\2/p' "$METRICS" | tail -n 1)
		last=${last:-0}
	fi
	labels="source=\"$(esc "$SOURCE")\",host=\"$(esc "$HOST")\",target=\"$(esc "$TARGET")\",path=\"$(esc "$pth")\""
	{
		gauge last_success_timestamp_seconds "Unix time of the last run that copied and verified the source." "$last"
		gauge last_run_timestamp_seconds "Unix time the last run ended." "$t"
		gauge last_run_result "Result of the last run: 0 success, 1 failure." "$result"
		gauge last_run_duration_seconds "Seconds the last run took, snapshot to summary." "${secs:-0}"
		gauge last_run_read_bytes "Bytes the last run read from the source." "${read_bytes:-0}"
		[ -z "${sent_bytes:-}" ] ||
			gauge last_run_sent_bytes "Bytes the last run sent to the backup host (the stream after framing and compression)." "$sent_bytes"
	} >"$METRICS.tmp" && mv -f "$METRICS.tmp" "$METRICS" ||
		echo "$me: cannot write metrics to '$METRICS'" >&2
}
esc() { local v=${1//\\/\\\\}; v=${v//\"/\\\"}; printf '%s' "${v//$'\n'/\\n}"; }
gauge() {
	printf '# HELP blkpipe_replicate_%s %s\n# TYPE blkpipe_replicate_%s gauge\nblkpipe_replicate_%s{%s} %s\n' \
		"$1" "$2" "$1" "$1" "$labels" "$3"
}

elapsed() { secs=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'); }

# fail DETAIL: the FAILED line, DETAIL naming the stage and the cause (on
# stdout even with -q, and in the log), the metrics, exit 1.
fail() {
	elapsed
	local line="$me: FAILED $what after ${secs} s${read_bytes:+ ($read_bytes bytes read)}: $1"
	echo "$line"
	log "$line"
	metrics 1
	exit 1
}

if [ -n "$LOCK" ]; then
	exec 9>>"$LOCK" || fail "lock: cannot open '$LOCK'"
	if ! flock -n 9; then
		line="$me: SKIPPED $what: another run holds the lock $LOCK"
		echo "$line"
		log "$line"
		exit 1
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/replicate.XXXXXX") || fail "setup: cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT
read_bytes= sent_bytes= path=full

# The source must exist (an LVM name like vg0/data means /dev/vg0/data).
dev=$SOURCE
[ -e "$dev" ] || [ "$SNAPSHOT" = no ] || [[ $dev == /* ]] || dev=/dev/$SOURCE
if [ -b "$dev" ]; then
	size=$(blockdev --getsize64 "$dev") || fail "source: cannot read the size of '$SOURCE'"
elif [ -f "$dev" ]; then
	size=$(stat -c %s "$dev")
elif [ -e "$dev" ]; then
	fail "source: '$SOURCE' is neither a block device nor a regular file"
else
	fail "source: '$SOURCE' does not exist"
fi

# The display writes to our stderr by path: snapctl passes its children
# only descriptors 0 to 2, and their stderr (2) is captured in run.err.
tty=
[ ${#display[@]} -eq 0 ] || tty=" 2>/proc/$$/fd/2"
rc=0
pipeline "d=$(printf %q "$tmp")"
"${snap[@]}" bash -c "$script" 2>"$tmp/run.err" || rc=$?
elapsed

show() { # the tools' own messages, indented
	for f in "$tmp/run.err" "$tmp/changes.err" "$tmp/blkcat.err" "$tmp/frame.err" "$tmp/sums.err" "$tmp/remote.err"; do
		[ ! -s "$f" ] || sed "s/^/$me:   /" "$f" >&2
	done
}
# The last line a tool printed, without its name: the cause of a failure.
last() { [ -s "$1" ] && sed -n '$s/^[a-z]*: //p' "$1"; }

path=full
[ ! -s "$tmp/path" ] || path=$(cat "$tmp/path")
read_bytes=$(sed -n 's/^\([0-9]*\) bytes .*/\1/p' "$tmp/blkcat.err" 2>/dev/null | tail -n 1) || true
case $path in
changed-blocks*) read_bytes=$(sed -n 's/^blkcat: changed blocks: .* read \([0-9]*\) bytes, .*/\1/p' "$tmp/blkcat.err" 2>/dev/null | tail -n 1) || true ;;
esac
sent_bytes=$(sed -n 's/.*"bytes":\([0-9]*\),.*"done":true.*/\1/p' "$tmp/wire.json" 2>/dev/null | tail -n 1) || true

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
	who=snapctl stage=snapshot
	[ "$SNAPSHOT" = yes ] || who="the pipeline (bash)" stage=pipeline
	if [ -e "$tmp/blkcat.err" ]; then
		fail="$who exited $rc during the copy"
		[ $rc -ne 130 ] || fail+=" (interrupted)"
	else
		cause=$(last "$tmp/run.err") || true
		show
		fail "$stage: $who exited $rc before the copy ran${cause:+: $cause}"
	fi
fi
[ -n "$fail" ] || [ $rc -eq 0 ] || fail="snapctl exited $rc"
digest=
if [ "$RAW" != yes ]; then
	# "ALG HEX" from blkwrite's last line (blake3 by default, sha256 with
	# an older sender or --digest sha256).
	digest=$(sed -n 's/^blkwrite: verified \(blake3\|sha256\) \([0-9a-f]\{64\}\)$/\1 \2/p' "$tmp/remote.err" 2>/dev/null | tail -n 1) || true
	[ -n "$fail" ] || [ -n "$digest" ] || fail="blkwrite reported no verified digest"
fi
# --keep: the version blkwrite kept before writing, and after a failure
# the last good one (blkwrite's own line on stderr says how to use it).
version=
if [ -n "$KEEP" ]; then
	version=$(sed -n 's/^blkwrite: --keep: \(kept version\|version\) \([^ ]*\) .*/\2/p' "$tmp/remote.err" 2>/dev/null | tail -n 1) || true
	good=$(sed -n 's/^blkwrite: --keep: .* its last good version is \([^ ]*\) .*/\1/p' "$tmp/remote.err" 2>/dev/null | tail -n 1) || true
	[ -z "$fail" ] || [ -z "$good" ] || fail+="; last good version on $HOST: $good"
fi
if [ -n "$fail" ]; then
	show
	# The stages that failed and their exit status; each tool's own
	# message (the cause) is shown above, on stderr.
	fail "$fail"
fi
[ "$VERBOSE" = no ] || show

for dir in $CONFIG_DIRS; do
	rsync_cmd "$dir"
	if ! "${rsync[@]}" >&2; then
		fail "rsync: copy done, but rsync of $dir to $HOST failed"
	fi
done

elapsed
read_bytes=${read_bytes:-$size}
rate=$(awk -v b="$size" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
proof="$size bytes raw, not verified"
[ -z "$digest" ] || proof="$size bytes verified $digest"
kept=
if [ -n "$KEEP" ]; then
	if [ -n "$version" ]; then
		kept=", kept version $version"
	else
		kept=", no version kept (no verified copy before)"
	fi
fi
line="$me: ok $what via $path: read $read_bytes bytes, sent ${sent_bytes:-?} bytes, $proof in $secs s, $rate MB/s$kept${CONFIG_DIRS:+, synced $CONFIG_DIRS}"
[ "$QUIET" = yes ] || echo "$line"
log "$line"
metrics 0
