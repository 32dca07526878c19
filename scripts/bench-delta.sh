#!/usr/bin/env bash
# Delta sync benchmark (issue 7), one run, ratios: an image with PCT % of
# its 4 KiB blocks changed at random is refreshed with
#   blkcat --sums DST | blkcat --against - SRC | blkwrite DST
# and compared with reading both sides once (the floor: the delta pipeline
# must read both) and with a full blkcat | blkwrite copy and a framed one.
# Bytes: what crossed the "network" (sums + delta stream) vs changed bytes;
# CPU: user+sys seconds of all the delta pipeline's processes.
#
# Reading both sides and the delta run RUNS times, alternating, and the
# medians are compared (the target is refreshed from the changed image and
# back to the original in turn, so every run sends the same amount).
#
# Usage: scripts/bench-delta.sh [-n RUNS] [-s SIZE_MiB] [-p PCT] [-d DIR]
# Needs python3 (to scatter the changes); root to drop caches between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
runs=3
size_mib=4096
pct=1
dir=${TMPDIR:-/var/tmp}/blkpipe-bench-delta
usage="usage: $0 [-n RUNS] [-s SIZE_MiB] [-p PCT] [-d DIR]"
options n:s:p:d: "$usage" "$@"
if [ ${#operands[@]} -gt 0 ]; then
	echo "$0: unexpected argument '${operands[0]}'; $usage" >&2
	exit 2
fi
mkdir -p "$dir"
build ./cmd/blkcat ./cmd/blkwrite
export BLKPIPE_STATE_DIR=$dir/state
bytes=$((size_mib << 20))
src=$dir/src.img dst=$dir/dst.img old=$dir/old.img full=$dir/full.img
loop=
cleanup() {
	[ -z "$loop" ] || losetup -d "$loop"
	rm -f "$src" "$dst" "$old" "$full" "$dir/sums.bin" "$dir/delta.bin" "$dir/time" "$dir/time.err"
}
trap cleanup EXIT

echo "making a ${size_mib} MiB random image and a copy with ${pct} % of its 4 KiB blocks changed" >&2
head -c "$bytes" /dev/urandom >"$dst"
cp "$dst" "$src"
cp "$dst" "$old"
read -r changed leaves <<<"$(python3 - "$src" "$pct" <<'PY'
import os, random, sys
path, pct = sys.argv[1], float(sys.argv[2])
blocks = os.path.getsize(path) // 4096
n = int(blocks * pct / 100)
touched = set()
with open(path, "r+b") as f:
    for b in sorted(random.Random(7).sample(range(blocks), n)):
        f.seek(b * 4096)
        f.write(os.urandom(4096))
        touched.add(b * 4096 // 65536)
print(n * 4096, len(touched) * 65536)
PY
)"
sync

# timeit CMD: the wall seconds of CMD, after dropping the caches; its CPU
# seconds (user+sys, the whole pipeline) are left in $dir/time.
timeit() {
	drop_caches
	wall cputime "$dir/time" "$1"
}

# delta FROM [BLKWRITE FLAGS]: refresh the target from FROM.
delta() {
	local from=$1
	shift
	timeit "$B/blkcat -q --sums $dst | tee $dir/sums.bin | $B/blkcat -q --against - $from | tee $dir/delta.bin | $B/blkwrite -q $* $dst"
}
tr=() td=() tnv=() cd=() cnv=()
for ((i = 0; i < runs; i++)); do
	tr+=("$(timeit "$B/blkcat -q $src >/dev/null & $B/blkcat -q $dst >/dev/null; wait")")
	td+=("$(delta "$src")")
	cd+=("$(cat "$dir/time")")
	cmp "$src" "$dst" || { echo "FAILED: target differs after the delta" >&2; exit 1; }
	# The same with the target's bytes left unhashed: the receiver's
	# SHA-256 pass is what a two-host pipeline runs on the other
	# machine's cores. It takes the target back to the original.
	tnv+=("$(delta "$old" --no-verify)")
	cnv+=("$(cat "$dir/time")")
done
cmp "$old" "$dst" || { echo "FAILED: target differs after the delta" >&2; exit 1; }
t_read=$(printf '%s\n' "${tr[@]}" | median)
t_delta=$(printf '%s\n' "${td[@]}" | median)
t_noverify=$(printf '%s\n' "${tnv[@]}" | median)
c_delta=$(printf '%s\n' "${cd[@]}" | median)
c_noverify=$(printf '%s\n' "${cnv[@]}" | median)
t_full=$(timeit "$B/blkcat -q $src | $B/blkwrite -q $full")
t_frame=$(timeit "$B/blkcat -q --frame $src | $B/blkwrite -q $full")
sums=$(wc -c <"$dir/sums.bin")
delta=$(wc -c <"$dir/delta.bin")
rm -f "$dir/sums.bin" "$dir/delta.bin"

# The figures' numbers, for say (scripts/bench-lib.sh).
figures=("size=$bytes" "ch=$changed" "sums=$sums" "delta=$delta" "runs=$runs"
	"tr=$t_read" "td=$t_delta" "tf=$t_full" "tfr=$t_frame" "tnv=$t_noverify"
	"cd=$c_delta" "cnv=$c_noverify")
say "image %d MiB, changed %d bytes (%.2f %%), medians of %d runs" "size / 1048576" ch "100 * ch / size" runs
say "time: read both sides %.2f s, delta pipeline %.2f s, full copy %.2f s, framed full copy %.2f s" tr td tf tfr
say "cpu (user+sys, all processes): delta pipeline %.2f s, with receiver --no-verify %.2f s" cd cnv
say "delta / read both      %.2f×  (goal ≤ 1.2×)" "td / tr"
say "  receiver --no-verify %.2f×  (%.2f s: without the second SHA-256 pass on this host)" "tnv / tr" tnv
say "delta / full copy      %.2f×" "td / tf"
say "delta / framed copy    %.2f×" "td / tfr"
say "delta stream / changed %.3f×  (goal ≤ 1.1×)" "delta / ch"
say "sums / image           %.3f %%  (goal ≤ 0.5 %%)" "100 * sums / size"
say "wire (sums + delta) / changed %.3f×" "(sums + delta) / ch"

# The delta with a valid digest map (issue 16): on a loop device holding the
# original image, with the copy record, map and block sums that a framed
# full copy keeps, the refresh reads the source once and, from the target,
# only the touched 64 KiB leaves' other bytes (and 2 × 8 sampled leaves:
# blkcat --sums and blkwrite each check the map). Bytes read from the target
# are counted in /sys/block/loopN/stat (sectors read) around the refresh.
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
	echo "map: skipped (needs root and losetup for a loop device)" >&2
	exit 0
fi
cp "$old" "$dst"
# Direct I/O to the image, as a disk serves reads in parallel; buffered,
# the loop driver reads its backing file one request at a time.
loop=$(losetup --find --show --direct-io=on "$dst")
sectors() { awk '{ print $3 }' "/sys/block/$(basename "$loop")/stat"; }
"$B/blkcat" -q --frame "$old" | "$B/blkwrite" -q "$loop" 2>/dev/null
drop_caches
s0=$(sectors)
t_map=$(timeit "$B/blkcat -q --sums $loop | $B/blkcat -q --against - $src | $B/blkwrite -q $loop")
read_target=$((($(sectors) - s0) * 512))
if grep -q "no valid" "$dir/time.err"; then
	echo "FAILED: the refresh did not use the digest map:" >&2
	cat "$dir/time.err" >&2
	exit 1
fi
t_read1=$(timeit "$B/blkcat -q $src >/dev/null")
cmp "$src" "$loop" || { echo "FAILED: target differs after the delta" >&2; exit 1; }
tag
awk -v tm="$t_map" -v t1="$t_read1" 'BEGIN { printf "map: delta with a valid map %.2f s, reading the source once %.2f s: %.2f×  (goal ≤ 1.2×)\n", tm, t1, tm / t1 }'
tag
awk -v r="$read_target" -v l="$leaves" -v size="$bytes" 'BEGIN { printf "map: target bytes read %d, touched leaves %d bytes: %.3f×  (goal ≤ 1.2×); %.2f %% of the target\n", r, l, r / l, 100 * r / size }'
