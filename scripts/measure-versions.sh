#!/usr/bin/env bash
# blkwrite --keep (issue 18), one run, printed numbers: how long the backup
# copy is unusable when a refresh fails, with and without --keep, and what
# taking a version costs. On a reflink XFS loop file system made here, an
# image of SIZE MiB is copied once (verified), then refreshed in full:
#   - without --keep: the target is inconsistent from the refresh's first
#     byte until it verifies, and after a failure until a later refresh
#     completes: at least the length of a refresh;
#   - with --keep: a refresh cut at 50 % leaves the version taken before it,
#     which b3sum checks against the copy record's digest right away.
# The thin pool's cost of versions (7 nightly deltas at 1 % churn) is
# printed by the guest test: go test ./internal/e2e -run TestKeepLVM -v.
#
# Usage: scripts/measure-versions.sh [-s SIZE_MiB] [-d DIR]   (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=1024
dir=${TMPDIR:-/var/tmp}/blkpipe-measure-versions
while getopts "s:d:" o; do
	case $o in
	s) size_mib=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE_MiB] [-d DIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1'; usage: $0 [-s SIZE_MiB] [-d DIR]" >&2; exit 2; }
export CGO_ENABLED=0
mkdir -p bin "$dir"
go build -o bin/ ./cmd/blkcat ./cmd/blkwrite
B=$(pwd)/bin
mnt=$dir/mnt
mkdir -p "$mnt"
truncate -s $((size_mib * 3 + 512))M "$dir/fs.img"
mkfs.xfs -q -f -m reflink=1 "$dir/fs.img"
mount -o loop "$dir/fs.img" "$mnt"
export BLKPIPE_STATE_DIR=$dir/state
cleanup() { umount "$mnt" || umount -l "$mnt"; rm -rf "$dir"; }
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

src=$dir/src.img
head -c $((size_mib << 20)) /dev/urandom >"$src"
t=$mnt/backup.img
: >"$t"
"$B/blkcat" -q --frame "$src" | "$B/blkwrite" -q "$t" 2>/dev/null
"$B/blkcat" -q --frame "$src" >"$dir/stream"
echo "image: $size_mib MiB on reflink XFS ($(nproc) cores)"

a=$(now)
"$B/blkwrite" -q "$t" <"$dir/stream" 2>/dev/null
b=$(now)
plain=$(secs "$a" "$b")
echo "refresh without --keep:         $plain s (the copy is unusable for all of it, and after a failure until a later refresh completes)"

a=$(now)
"$B/blkwrite" -q --keep 2 "$t" <"$dir/stream" 2>/dev/null
b=$(now)
echo "first refresh with --keep 2:    $(secs "$a" "$b") s (if the target has no copy record yet, no version: a probe snapshot only)"
a=$(now)
"$B/blkwrite" -q --keep 2 "$t" <"$dir/stream" 2>"$dir/keep.err"
b=$(now)
echo "refresh with --keep 2:          $(secs "$a" "$b") s (takes a reflink version first)"

half=$(($(stat -c %s "$dir/stream") / 2))
a=$(now)
head -c "$half" "$dir/stream" | "$B/blkwrite" -q --keep 2 "$t" 2>"$dir/fail.err" && { echo "the cut refresh succeeded?" >&2; exit 1; }
b=$(now)
v=$(sed -n 's/.*its last good version is \([^ ]*\) (blake3 \([0-9a-f]*\) .*/\1 \2/p' "$dir/fail.err")
[ -n "$v" ] || { echo "blkwrite named no last good version:" >&2; cat "$dir/fail.err" >&2; exit 1; }
read -r path digest <<<"$v"
c=$(now)
got=$(b3sum --no-names "$path")
d=$(now)
[ "$got" = "$digest" ] || { echo "version $path: b3sum $got, recorded $digest" >&2; exit 1; }
echo "refresh cut at 50 % (--keep):   failed after $(secs "$a" "$b") s; the previous copy is usable at once: 0 s (b3sum of the version, $(secs "$c" "$d") s, matches its record)"
