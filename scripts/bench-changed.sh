#!/usr/bin/env bash
# Changed-block benchmark (issue 17), one run, ratios: a random image on
# XFS (reflink=1) gets 1 % churn, once as scattered 4 KiB writes and once as
# 1 MiB runs; each night is refreshed with
#   blkcat --changed-from BASE -z lz4 NEW | blkwrite TARGET
# (BASE and NEW reflink clones) and, on a copy of the same target, with the
# sums delta it replaces
#   blkcat --sums T | blkcat --against - NEW -z lz4 | blkwrite T
# Beside it, on btrfs, the same change between two read-only snapshots is
# timed with btrfs send -p (to /dev/null) and with blkcat --changed-from of
# the image file in them (to /dev/null).
# Goals: bytes read from the source and from the target each ≤ 1.2× the
# 64 KiB leaves the changes touch, bytes on the wire ≤ 1.1× the changed
# 4 KiB blocks, wall ≤ 0.1× the sums delta for 1 MiB runs and ≤ 0.3× for
# scattered writes. The bytes each side read from storage are counted from
# /proc/PID/io (blkwrite reads back the untouched bytes of the leaves the
# records touch, and its kept map and sums); the sender alone is timed
# too.
#
# Usage: scripts/bench-changed.sh [-s SIZE_MiB] [-p PCT] [-d DIR]
# Needs root (loop file systems), mkfs.xfs, mkfs.btrfs, btrfs, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
size_mib=4096
pct=1
dir=${TMPDIR:-/var/tmp}/blkpipe-bench-changed
usage="usage: $0 [-s SIZE_MiB] [-p PCT] [-d DIR]"
options s:p:d: "$usage" "$@"
[ ${#operands[@]} -eq 0 ] || { echo "$usage" >&2; exit 2; }
mkdir -p "$dir"
build ./cmd/blkcat ./cmd/blkwrite
export BLKPIPE_STATE_DIR=$dir/state
bytes=$((size_mib << 20))
xfs=$dir/xfs btrfs=$dir/btrfs
loops=()
cleanup() {
	umount "$xfs" "$btrfs" 2>/dev/null || true
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
# mkfs_loop FS MNT: a sparse loop file system big enough for the image,
# its clones and snapshots.
mkfs_loop() {
	local img=$dir/$1.fs dev
	truncate -s $((bytes * 3 + (1 << 30))) "$img"
	# --direct-io=on: the loop device hands its reads to the disk as they
	# come, several at once, as a real disk takes them; without it the
	# loop driver reads one request at a time through the page cache, and
	# every scattered read waits for the one before.
	dev=$(losetup -f --show --direct-io=on "$img")
	loops+=("$dev")
	case $1 in
	xfs) mkfs.xfs -q -m reflink=1 "$dev" ;;
	btrfs) mkfs.btrfs -q "$dev" >/dev/null ;;
	esac
	mkdir -p "$2"
	mount "$dev" "$2"
	# btrfs too: a subvolume's device number changes with each mount,
	# and the kept records still match by the file system's f_fsid.
	mounts+=("$dev" "$2")
}
mounts=()
mkfs_loop xfs "$xfs"
mkfs_loop btrfs "$btrfs"
# remount: the loop file systems unmounted and mounted again. Dropping
# caches leaves XFS's metadata buffers (extent and refcount btrees) in
# memory, so without it only the first run after a snapshot reads them.
remount() {
	local i
	for ((i = 0; i < ${#mounts[@]}; i += 2)); do
		umount "${mounts[i + 1]}"
		mount "${mounts[i]}" "${mounts[i + 1]}"
	done
}

# timeit CMD: wall seconds of CMD (bash -o pipefail), cold: remounted
# and caches dropped first (then the tools read back
# in, so their start-up pages are not counted as reads of the data); its
# stderr is kept in $dir/err.
timeit() {
	remount
	drop_caches
	cat "$B/blkcat" "$B/blkwrite" "$dir/rd" "$(command -v btrfs)" >/dev/null
	wall quiet "$1"
}
quiet() { bash -o pipefail -c "$1" >/dev/null 2>"$dir/err" || { echo "FAILED: $1" >&2; cat "$dir/err" >&2; return 1; }; }

# $dir/rd OUT CMD ARG...: runs CMD ARG... and writes to OUT the bytes it
# read from storage: read_bytes of the shell's /proc/PID/io, which adds
# the children it has waited for (read with builtins, so nothing else
# counts). With caches dropped first these are the device reads.
cat >"$dir/rd" <<'SH'
#!/usr/bin/env bash
io() { local k v; while read -r k v; do [ "$k" != read_bytes: ] || echo "$v"; done </proc/$$/io; }
out=$1
shift
b=$(io)
"$@"
rc=$?
echo $(($(io) - b)) >"$out"
exit $rc
SH
chmod +x "$dir/rd"

# churn IMG KIND: PCT % of IMG's 4 KiB blocks rewritten, scattered
# ("scattered") or in 1 MiB runs ("runs"); prints the changed bytes and
# the bytes of the 64 KiB leaves they touch.
churn() {
	python3 - "$1" "$pct" "$2" <<'PY'
import os, random, sys
path, pct, kind = sys.argv[1], float(sys.argv[2]), sys.argv[3]
blocks = os.path.getsize(path) // 4096
n = int(blocks * pct / 100)
r = random.Random(17 if kind == "scattered" else 18)
if kind == "scattered":
    picks = r.sample(range(blocks), n)
else:
    runs = max(1, n // 256)
    starts = r.sample(range(0, blocks - 256, 256), runs)
    picks = [s + i for s in starts for i in range(256)]
with open(path, "r+b") as f:
    for b in sorted(picks):
        f.seek(b * 4096)
        f.write(os.urandom(4096))
    os.fsync(f.fileno())
leaves = {b // 16 for b in picks}
print(len(picks) * 4096, len(leaves) * 65536)
PY
}

echo "making a ${size_mib} MiB random image on XFS and on btrfs" >&2
head -c "$bytes" /dev/urandom >"$xfs/vm.img"
btrfs -q subvolume create "$btrfs/vol"
cp "$xfs/vm.img" "$btrfs/vol/vm.img"
cp --reflink=always "$xfs/vm.img" "$xfs/s0.img"
btrfs -q subvolume snapshot -r "$btrfs/vol" "$btrfs/s0"
target=$dir/target.img sumsT=$dir/sums-target.img
# Both targets get a verified copy, so blkwrite keeps their copy record,
# leaf map and block sums, as after a real first night.
"$B/blkcat" -q --frame "$xfs/vm.img" | "$B/blkwrite" -q "$target"
"$B/blkcat" -q --frame "$xfs/vm.img" | "$B/blkwrite" -q "$sumsT"
# The base's leaf map and block sums, as the run that sent it keeps them.
"$B/blkcat" -q --changed-from "$xfs/s0.img" "$xfs/s0.img" >/dev/null 2>&1
"$B/blkcat" -q --changed-from "$btrfs/s0/vm.img" "$btrfs/s0/vm.img" >/dev/null 2>&1

base=$xfs/s0.img bbase=$btrfs/s0
n=0
for kind in scattered runs; do
	n=$((n + 1))
	read -r changed leaves < <(churn "$xfs/vm.img" "$kind")
	churn "$btrfs/vol/vm.img" "$kind" >/dev/null
	cp --reflink=always "$xfs/vm.img" "$xfs/s$n.img"
	btrfs -q subvolume snapshot -r "$btrfs/vol" "$btrfs/s$n"
	next=$xfs/s$n.img
	t_changed=$(timeit "$dir/rd $dir/rd.src $B/blkcat --changed-from $base -z lz4 $next | tee $dir/delta.bin | $dir/rd $dir/rd.dst $B/blkwrite $target")
	line=$(grep 'changed blocks:' "$dir/err")
	# 1 when blkwrite verified from its leaf map (reading only the leaves
	# the records touch), 0 when it read the whole target back.
	frommap=1
	grep -q 'no valid digest map' "$dir/err" && frommap=0
	read_src=$(sed -n 's/.* read \([0-9]*\) bytes,.*/\1/p' <<<"$line")
	# What each side's process read from storage: blkcat, NEW's changed
	# leaves and BASE's kept map; blkwrite, the target's leaves the
	# records touch and its own kept map and sums.
	io_src=$(cat "$dir/rd.src") io_dst=$(cat "$dir/rd.dst")
	wire=$(wc -c <"$dir/delta.bin")
	cmp "$next" "$target" || { echo "FAILED: target differs after the changed-block delta" >&2; exit 1; }
	# The sender alone, to /dev/null: what the changed-block path costs
	# on the source host.
	t_sender=$(timeit "$B/blkcat -q --changed-from $base -z lz4 $next")
	t_sums=$(timeit "$B/blkcat -q --sums $sumsT | $B/blkcat -q --against - -z lz4 $next | $B/blkwrite -q $sumsT")
	cmp "$next" "$sumsT" || { echo "FAILED: target differs after the sums delta" >&2; exit 1; }
	t_send=$(timeit "btrfs send -q -p $bbase $btrfs/s$n | wc -c >$dir/send.bytes")
	send_bytes=$(cat "$dir/send.bytes")
	t_bchanged=$(timeit "$B/blkcat -q --changed-from $bbase/vm.img -z lz4 $btrfs/s$n/vm.img | wc -c")
	figures=("size=$bytes" "ch=$changed" "leaves=$leaves" "rd=$read_src" "iosrc=$io_src" "iodst=$io_dst" "wire=$wire"
		"tc=$t_changed" "ts=$t_sums" "tsd=$t_sender" "tsend=$t_send" "sendb=$send_bytes" "tbc=$t_bchanged" "frommap=$frommap")
	goal=0.3
	[ "$kind" = scattered ] || goal=0.1
	what="scattered 4 KiB writes"
	[ "$kind" = scattered ] || what="1 MiB runs"
	echo "== $pct % churn, $what, ${size_mib} MiB image"
	say "changed %d bytes in %d 4 KiB blocks; leaves touched %d bytes" ch "ch / 4096" leaves
	say "time: changed-block delta %.2f s (the sender alone %.2f s), sums delta %.2f s" tc tsd ts
	say "changed / sums delta wall   %.3f×  (goal ≤ $goal×)" "tc / ts"
	say "  the sender alone / sums   %.3f×" "tsd / ts"
	say "source read / leaves touched %.3f×  (goal ≤ 1.2×)" "rd / leaves"
	say "  blkcat's storage reads / leaves touched %.3f× (with BASE's kept map)" "iosrc / leaves"
	say "target read / leaves touched %.3f×  (goal ≤ 1.2×; blkwrite's storage reads, with its kept map and sums)" "iodst / leaves"
	say "wire / changed blocks       %.3f×  (goal ≤ 1.1×)" "wire / ch"
	say "receiver verified from its leaf map: %d (1 yes: it read only the leaves the records touch; 0 no: it read the whole target back)" frommap
	say "btrfs: send -p %.2f s (%d bytes), blkcat --changed-from of the file in the snapshots %.2f s" tsend sendb tbc
	# 700 GB with 2 % changed over 1 GbE (117 MB/s), from this run's
	# rates: the pipeline handles ch changed bytes in tc and sends
	# wire/ch of them, whichever is slower; the sums delta reads both
	# sides whole at size/ts.
	say "700 GB, 2 %% changed, 1 GbE: changed blocks ≈ %.0f s (%.1f GB on the wire); sums delta ≈ %.0f s" \
		"(14e9 * wire / ch / 117e6 > 14e9 * tc / ch ? 14e9 * wire / ch / 117e6 : 14e9 * tc / ch)" "14 * wire / ch" "700e9 / (size / ts)"
	base=$next bbase=$btrfs/s$n
	"$B/blkcat" -q --frame "$target" | "$B/blkwrite" -q "$sumsT"
	if [ "$kind" = scattered ]; then scattered_leaves=$leaves; fi
done

# What the disk itself allows: scattered changes are read as whole 64 KiB
# leaves at random places (on each side), the sums delta reads both sides
# in order; so the scattered ratio cannot fall below (leaves touched /
# image) × (sequential rate / random rate) on this disk.
if command -v fio >/dev/null; then
	fiorate() { # RW BS: MB/s of O_DIRECT reads of the XFS image, 32 in flight
		remount
		drop_caches
		fio --name=bound --filename="$xfs/vm.img" --direct=1 --ioengine=libaio --iodepth=32 \
			--rw="$1" --bs="$2" --size="$bytes" --runtime=3 --time_based --output-format=terse 2>/dev/null |
			awk -F';' '{ printf "%.0f", $7 * 1024 / 1e6 }'
	}
	figures=("rnd=$(fiorate randread 64k)" "sq=$(fiorate read 4m)" "leaves=$scattered_leaves" "size=$bytes")
	say "the disk: random 64 KiB reads %.0f MB/s, sequential 4 MiB reads %.0f MB/s (fio, O_DIRECT, 32 in flight): the scattered wall ratio is at least %.3f× on it" \
		rnd sq "leaves / size * sq / rnd"
fi
