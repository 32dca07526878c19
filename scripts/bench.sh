#!/usr/bin/env bash
# blkpipe benchmarks: runs each tool and its anchor (dd, fio, pv, lz4, zstd)
# side by side in one run, alternating A B A B, and prints the median wall
# time of each and the throughput ratio (B's time / A's time: above 1 means
# blkpipe is faster). Ratios are what to trust on a shared machine.
#
# Usage: scripts/bench.sh [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]
# Sections: read pipe dropin device write cache rss pvcat frame (default: all).
# frame builds MIXED, an ext4 image of SIZE about half full of ordinary files
# (text, copies of binaries, random data, zeros), with mkfs.ext4 -d.
# Needs root for dropping caches and for loop devices; fio and fincore
# (util-linux) are used when present.
set -euo pipefail
runs=5
size_mib=4096
dir=${TMPDIR:-/var/tmp}/blkpipe-bench
all="read pipe dropin device write cache rss pvcat frame"
while getopts "n:s:d:" o; do
	case $o in
	n) runs=$OPTARG ;;
	s) size_mib=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
sections=${*:-$all}
# A misspelt section is refused before the build and the image, not
# after minutes of the sections before it.
for s in $sections; do
	case " $all " in
	*" $s "*) ;;
	*) echo "unknown section $s (sections: $all)" >&2; exit 2 ;;
	esac
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # -d DIR is relative to where the script was started
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
mkdir -p bin
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
	last_a=$ma last_b=$mb
	awk -v n="$name" -v g="$goal" -v a="$ma" -v b="$mb" -v by="$bytes" 'BEGIN {
		printf "%-34s blkpipe %7.3f s (%6.0f MB/s)  anchor %7.3f s (%6.0f MB/s)  ratio %.2fx  goal %s\n",
			n, a, by / a / 1e6, b, by / b / 1e6, b / a, g }'
}


# make_mixed IMG: an ext4 image of size_mib MiB about half full of the kind
# of files a real volume holds, so compression ratios mean something.
make_mixed() {
	local img=$1 tree=$dir/mixed-tree budget=$((size_mib << 19)) i=0
	[ "$(stat -c %s "$img" 2>/dev/null || echo 0)" = "$bytes" ] && return
	echo "making a ${size_mib} MiB ext4 image about half full of files: $img"
	rm -rf "$tree" "$img"
	mkdir -p "$tree"
	head -c $((budget / 10)) /dev/urandom >"$tree/random.bin"
	head -c $((budget / 20)) /dev/zero >"$tree/zeros.bin"
	# Text (Go sources, docs), binaries and libraries, in rounds until the
	# budget is spent; awk stops the file list at the budget.
	local left=$((budget - budget / 10 - budget / 20))
	while [ "$left" -gt 0 ]; do
		mkdir -p "$tree/$i"
		{ find /usr/local/go/src /usr/bin /usr/share/doc /usr/lib/x86_64-linux-gnu -xdev -type f -size -16M -printf '%s %p\n' 2>/dev/null || true; } |
			awk -v b="$left" '{ s += $1; if (s > b) exit; print substr($0, index($0, " ") + 1) }' |
			{ tar -cf - --ignore-failed-read -T - 2>/dev/null || true; } | tar -xf - -C "$tree/$i"
		local was=$left
		left=$((budget - $(du -sb "$tree" | cut -f1)))
		[ "$left" -lt "$was" ] || break
		i=$((i + 1))
	done
	truncate -s "$bytes" "$img.tmp"
	mkfs.ext4 -q -F -d "$tree" "$img.tmp"
	mv "$img.tmp" "$img"
	rm -rf "$tree"
}

# cratio NAME A B: the compressed sizes of A's and B's output, as a
# percentage of the input, and B's over A's (within 2 % is the goal).
cratio() {
	local a b
	a=$(bash -c "$2" | wc -c)
	b=$(bash -c "$3" | wc -c)
	awk -v n="$1" -v a="$a" -v b="$b" -v by="$bytes" 'BEGIN {
		printf "%-34s blkpipe %6.2f%% of input  anchor %6.2f%%  size blkpipe/anchor %.3f  goal within 2%%\n", n, 100 * a / by, 100 * b / by, a / b }'
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
	frame)
		echo "== frame: blkcat --frame / -z and blkwrite's framed receiver vs lz4 and zstd"
		mixed=$dir/mixed.img
		make_mixed "$mixed"
		ratio "blkcat --frame RANDOM vs blkcat" ">= 0.9x" drop_caches \
			"$B/blkcat -q --frame $img >/dev/null" "$B/blkcat -q $img >/dev/null"
		# The ceiling: the SHA-256 of the whole source is one serial pass,
		# so a disk that reads faster than one core hashes caps --frame at
		# the hash's speed. openssl speed (SHA-NI) is the yardstick; it
		# hashes cache-hot data, and data just read from the disk hashes
		# slower, so the ceiling it gives is an upper bound. The second
		# row is the plain way to prove a copy: read, then one SHA-256.
		if command -v openssl >/dev/null; then
			openssl speed -seconds 2 -bytes 1048576 -evp sha256 2>/dev/null |
				awk -v by="$bytes" -v f="$last_a" -v p="$last_b" '/^sha256/ {
					sha = $2 * 1000
					printf "  SHA-256 of cache-hot data (openssl speed) %.0f MB/s, the disk read %.0f MB/s: --frame reaches %.0f %% of that hash, ceiling ratio at most %.2fx\n",
						sha / 1e6, by / p / 1e6, 100 * by / f / sha, (sha < by / p ? sha / (by / p) : 1) }'
			ratio "blkcat --frame RANDOM vs blkcat | openssl sha256" "report" drop_caches \
				"$B/blkcat -q --frame $img >/dev/null" "$B/blkcat -q $img | openssl dgst -sha256 >/dev/null"
		fi
		ratio "blkcat -z lz4 MIXED vs lz4 -1" ">= 1.5x" drop_caches \
			"$B/blkcat -q -z lz4 $mixed >/dev/null" "lz4 -q -1 -c $mixed >/dev/null"
		cratio "  compressed size, lz4" "$B/blkcat -q -z lz4 $mixed" "lz4 -q -1 -c $mixed"
		ratio "blkcat -z zstd MIXED vs zstd -1 -T0" ">= 1.0x" drop_caches \
			"$B/blkcat -q -z zstd $mixed >/dev/null" "zstd -q -1 -T0 -c $mixed >/dev/null"
		cratio "  compressed size, zstd (level 1)" "$B/blkcat -q -z zstd $mixed" "zstd -q -1 -T0 -c $mixed"
		ratio "blkcat -z zstd:3 MIXED vs zstd -3 -T0" "report" drop_caches \
			"$B/blkcat -q -z zstd:3 $mixed >/dev/null" "zstd -q -3 -T0 -c $mixed >/dev/null"
		cratio "  compressed size, zstd:3" "$B/blkcat -q -z zstd:3 $mixed" "zstd -q -3 -T0 -c $mixed"
		# Decoding into a file: blkwrite verifies the SHA-256 and
		# fdatasyncs, so the anchors sync their output too.
		"$B/blkcat" -q -z lz4 "$mixed" >"$dir/mixed.lz4.blkp"
		lz4 -q -1 -c "$mixed" >"$dir/mixed.lz4"
		"$B/blkcat" -q -z zstd "$mixed" >"$dir/mixed.zst.blkp"
		zstd -q -1 -T0 -c "$mixed" >"$dir/mixed.zst"
		ratio "blkwrite OUT < lz4 stream vs lz4 -d" ">= 1.0x" "rm -f $out; drop_caches" \
			"$B/blkwrite -q $out <$dir/mixed.lz4.blkp" "lz4 -q -d -c $dir/mixed.lz4 >$out && sync -d $out"
		ratio "blkwrite OUT < zstd stream vs zstd -d" ">= 1.0x" "rm -f $out; drop_caches" \
			"$B/blkwrite -q $out <$dir/mixed.zst.blkp" "zstd -q -d -c $dir/mixed.zst >$out && sync -d $out"
		rm -f "$out" "$dir"/mixed.lz4* "$dir"/mixed.zst*
		;;
	*) echo "unknown section $s" >&2; exit 2 ;;
	esac
done
