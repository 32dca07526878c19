#!/usr/bin/env bash
# blkpipe benchmarks: runs each tool and its anchor (dd, fio, pv, lz4, zstd)
# side by side in one run, alternating A B A B, and prints the median wall
# time of each and the throughput ratio (B's time / A's time: above 1 means
# blkpipe is faster). Ratios are what to trust on a shared machine.
#
# Usage: scripts/bench.sh [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]
# Sections: read pipe dropin device write cache rss pvcat (default: all).
# Needs root for dropping caches and for loop devices; fio and fincore
# (util-linux) are used when present.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
size_mib=4096
dir=${TMPDIR:-/var/tmp}/blkpipe-bench
while getopts "n:s:d:" o; do
	case $o in
	n) runs=$OPTARG ;;
	s) size_mib=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
sections=${*:-read pipe dropin device write cache rss pvcat}
export CGO_ENABLED=0
mkdir -p bin "$dir"
go build -o bin/ ./cmd/...
B=$(pwd)/bin
img=$dir/random.img
out=$dir/out.img
if [ "$(stat -c %s "$img" 2>/dev/null || echo 0)" != $((size_mib << 20)) ]; then
	echo "making a ${size_mib} MiB image of random data: $img"
	head -c $((size_mib << 20)) /dev/urandom >"$img"
fi
bytes=$((size_mib << 20))

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }

# timeit CMD...: runs CMD with bash, prints wall seconds.
timeit() {
	local s e
	s=$(now)
	bash -c "$1" >/dev/null 2>&1 || { echo "FAILED: $1" >&2; return 1; }
	e=$(now)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# ratio NAME GOAL PREP A B: alternates A and B (PREP before each run) and
# prints medians, MB/s of the image and B/A.
ratio() {
	local name=$1 goal=$2 prep=$3 a=$4 b=$5 ta=() tb=() i
	for ((i = 0; i < runs; i++)); do
		eval "$prep"
		ta+=("$(timeit "$a")")
		eval "$prep"
		tb+=("$(timeit "$b")")
	done
	local ma mb
	ma=$(printf '%s\n' "${ta[@]}" | median)
	mb=$(printf '%s\n' "${tb[@]}" | median)
	awk -v n="$name" -v g="$goal" -v a="$ma" -v b="$mb" -v by="$bytes" 'BEGIN {
		printf "%-34s blkpipe %7.3f s (%6.0f MB/s)  anchor %7.3f s (%6.0f MB/s)  ratio %.2fx  goal %s\n",
			n, a, by / a / 1e6, b, by / b / 1e6, b / a, g }'
}

for s in $sections; do
	case $s in
	read)
		echo "== read: O_DIRECT reader vs dd and fio (cold for every run)"
		ratio "blkcat IMG >/dev/null vs dd 4M direct" ">= 1.0x" drop_caches \
			"$B/blkcat -q $img >/dev/null" "dd if=$img bs=4M iflag=direct of=/dev/null status=none"
		if command -v fio >/dev/null; then
			ratio "blkcat IMG >/dev/null vs fio qd16" ">= 0.95x" drop_caches \
				"$B/blkcat -q $img >/dev/null" \
				"fio --name=r --filename=$img --rw=read --direct=1 --bs=1M --iodepth=16 --ioengine=io_uring --output=/dev/null || fio --name=r --filename=$img --rw=read --direct=1 --bs=1M --iodepth=16 --ioengine=libaio --output=/dev/null"
		fi
		;;
	pipe)
		echo "== pipe: blkcat | blkwrite into a file vs dd | dd"
		ratio "blkcat IMG | blkwrite OUT vs dd|dd 1M" "report" "rm -f $out; drop_caches" \
			"$B/blkcat -q $img | $B/blkwrite -q $out" "dd if=$img bs=1M status=none | dd of=$out bs=1M status=none"
		;;
	dropin)
		echo "== drop-in: default operands (bs=512) against dd's defaults"
		ratio "blkcat if=IMG of=/dev/null vs dd" ">= 1.5x" drop_caches \
			"$B/blkcat if=$img of=/dev/null status=none" "dd if=$img of=/dev/null status=none"
		;;
	device)
		if [ "$(id -u)" = 0 ]; then
			echo "== device: writing a loop device from a pipe, default operands"
			truncate -s "$bytes" "$dir/dev.img"
			dev=$(losetup --find --show "$dir/dev.img")
			trap 'losetup -d "$dev" 2>/dev/null || true' EXIT
			ratio "blkcat IMG | blkwrite of=LOOP vs dd|dd" ">= 10x" drop_caches \
				"$B/blkcat -q $img | $B/blkwrite of=$dev status=none" "dd if=$img bs=1M status=none | dd of=$dev status=none"
			losetup -d "$dev"
			trap - EXIT
			rm -f "$dir/dev.img"
		else
			echo "== device: skipped (needs root for a loop device)"
		fi
		;;
	write)
		echo "== write: from a pipe into a file vs dd 4M direct fsync"
		ratio "blkwrite of=OUT vs dd 4M direct fsync" ">= 1.0x" "rm -f $out; drop_caches" \
			"$B/blkcat -q $img | $B/blkwrite of=$out status=none" "$B/blkcat -q $img | dd of=$out bs=4M oflag=direct conv=fsync status=none"
		;;
	cache)
		if command -v fincore >/dev/null; then
			echo "== page cache left behind after reading the image (fincore)"
			drop_caches
			"$B/blkcat" -q "$img" >/dev/null
			c1=$(fincore -b -n -o RES "$img" | tr -d ' ')
			drop_caches
			dd if="$img" of=/dev/null bs=1M status=none
			c2=$(fincore -b -n -o RES "$img" | tr -d ' ')
			awk -v a="$c1" -v b="$c2" -v n="$bytes" 'BEGIN {
				printf "blkcat leaves %.2f%% of the image cached (goal <= 1%%); dd without iflag=direct leaves %.2f%%\n", 100 * a / n, 100 * b / n }'
			drop_caches
		fi
		;;
	rss)
		echo "== peak RSS at default settings (/usr/bin/time -v)"
		for t in "blkcat -q $img" "blkcat if=$img of=/dev/null status=none"; do
			kb=$( { /usr/bin/time -v "$B"/$t >/dev/null; } 2>&1 | awk -F: '/Maximum resident/ { gsub(/ /, "", $2); print $2 }')
			echo "$t: peak RSS $((kb / 1024)) MiB (goal <= 64 MiB)"
		done
		kb=$( { "$B/blkcat" -q "$img" | /usr/bin/time -v "$B/blkwrite" -q "$out" >/dev/null; } 2>&1 | awk -F: '/Maximum resident/ { gsub(/ /, "", $2); print $2 }')
		echo "blkwrite OUT < pipe: peak RSS $((kb / 1024)) MiB (goal <= 64 MiB)"
		rm -f "$out"
		;;
	pvcat)
		echo "== pvcat: against pv and cat|cat|cat (scripts/bench-pvcat.sh)"
		scripts/bench-pvcat.sh "$((size_mib < 2048 ? size_mib : 2048))" "$runs"
		;;
	*) echo "unknown section $s" >&2; exit 2 ;;
	esac
done
