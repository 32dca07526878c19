#!/usr/bin/env bash
# blkpipe benchmarks: runs each tool and its anchor (dd, fio, pv, lz4, zstd)
# side by side in one run, alternating A B A B, and prints the median wall
# time and CPU seconds (user+sys of the whole pipeline) of each, and two
# ratios: "ratio" is the anchor's time over blkpipe's (above 1: blkpipe is
# faster), "cpu" blkpipe's CPU seconds over the anchor's (below 1: blkpipe
# uses less). Ratios are what to trust on a shared machine.
#
# Usage: scripts/bench.sh [--report | --update-doc] [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]
# Sections: read aio pipe dropin device write cache rss pvcat digest frame
# delta changed changed-thin ssh usr1 (default: all). pvcat, delta, changed
# and ssh run scripts/bench-pvcat.sh, scripts/bench-delta.sh,
# scripts/bench-changed.sh and scripts/bench-ssh.sh at the same size;
# changed-thin runs scripts/bench-changed-thin.sh (a QEMU guest under TCG)
# at a sixteenth of it, 64 to 512 MiB.
# frame builds MIXED, an ext4 image of SIZE about half full of ordinary files
# (text, copies of binaries, random data, zeros), with mkfs.ext4 -d.
# usr1 starts blkcat, blkwrite and dd 200 times each with SIGUSR1 sent as
# soon as exec succeeded (scripts/usr1race) and counts how many died of it
# (issue #19); it needs no image: scripts/bench.sh -s 1 usr1.
# Needs root for dropping caches and for loop devices; fio and fincore
# (util-linux) are used when present.
#
# --report prints Markdown for docs/PERFORMANCE.md: the command, date,
# machine and commit, then every figure line prefixed with the script line
# that printed it and its section. --update-doc does the same and puts the
# report between the bench-report markers of docs/PERFORMANCE.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/bench-lib.sh"
runs=5
size_mib=4096
dir=${TMPDIR:-/var/tmp}/blkpipe-bench
all="read aio pipe dropin device write cache rss pvcat digest frame delta changed changed-thin ssh usr1"
usage="usage: $0 [--report | --update-doc] [-n RUNS] [-s SIZE_MiB] [-d DIR] [SECTION...]"
report=0 update_doc=0 args=()
for a in "$@"; do
	case $a in
	--report) report=1 ;;
	--update-doc) update_doc=1 ;;
	--*) echo "$usage" >&2; exit 2 ;;
	*) args+=("$a") ;;
	esac
done
options n:s:d: "$usage" ${args[@]+"${args[@]}"}
sections=${operands[*]:-$all}
# A misspelt section is refused before the build and the image, not
# after minutes of the sections before it.
for s in $sections; do
	case " $all " in
	*" $s "*) ;;
	*) echo "unknown section $s (sections: $all)" >&2; exit 2 ;;
	esac
done
if [ "$update_doc" = 1 ]; then
	# The report is made whole first; the document changes only if it was.
	doc=$root/docs/PERFORMANCE.md
	new=$(mktemp)
	trap 'rm -f "$new" "$new.md"' EXIT
	"$0" --report ${args[@]+"${args[@]}"} >"$new"
	awk -v r="$new" '
		/^<!-- bench-report:begin/ { print; while ((getline l < r) > 0) print l; skip = 1; found = 1; next }
		/^<!-- bench-report:end/ { skip = 0 }
		!skip { print }
		END { if (!found) exit 1 }' "$doc" >"$new.md" || { echo "$doc has no bench-report markers" >&2; exit 1; }
	cat "$new.md" >"$doc"
	echo "updated $doc" >&2
	exit 0
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # -d DIR is relative to where the script was started
cd "$root"
build ./cmd/...
img=$dir/random.img
out=$dir/out.img
tf=$dir/time
if [ "$(stat -c %s "$img" 2>/dev/null || echo 0)" != $((size_mib << 20)) ]; then
	echo "making a ${size_mib} MiB image of random data: $img" >&2
	head -c $((size_mib << 20)) /dev/urandom >"$img"
fi
bytes=$((size_mib << 20))

# timeit CMD: runs CMD with bash, prints wall and CPU seconds.
timeit() {
	local s e
	s=$(now)
	cputime "$tf" "$1" || return 1
	e=$(now)
	awk -v s="$s" -v e="$e" -v c="$(cat "$tf")" 'BEGIN { printf "%.4f %.3f\n", e - s, c }'
}

# ratio NAME GOAL PREP A B: alternates A and B (PREP before each run) and
# prints the medians of wall time (with MB/s of the image) and of CPU
# seconds, the anchor's time over blkpipe's and blkpipe's CPU over the
# anchor's.
ratio() {
	local name=$1 goal=$2 prep=$3 a=$4 b=$5 ta=() tb=() ca=() cb=() i t
	for ((i = 0; i < runs; i++)); do
		eval "$prep"
		t=$(timeit "$a")
		ta+=("${t% *}") ca+=("${t#* }")
		eval "$prep"
		t=$(timeit "$b")
		tb+=("${t% *}") cb+=("${t#* }")
	done
	local ma mb pa pb
	ma=$(printf '%s\n' "${ta[@]}" | median)
	mb=$(printf '%s\n' "${tb[@]}" | median)
	pa=$(printf '%s\n' "${ca[@]}" | median)
	pb=$(printf '%s\n' "${cb[@]}" | median)
	last_a=$ma last_b=$mb
	tag 2
	awk -v n="$name" -v g="$goal" -v a="$ma" -v b="$mb" -v pa="$pa" -v pb="$pb" -v by="$bytes" 'BEGIN {
		# An anchor that used no measurable CPU (dd with O_DIRECT) has no cpu ratio.
		c = pb >= 0.01 ? sprintf("%.2fx", pa / pb) : "n/a"
		printf "%-34s blkpipe %7.3f s (%5.0f MB/s, cpu %6.2f s)  anchor %7.3f s (%5.0f MB/s, cpu %6.2f s)  ratio %.2fx  cpu %s  goal %s\n",
			n, a, by / a / 1e6, pa, b, by / b / 1e6, pb, b / a, c, g }'
}

# rss LABEL GOAL CMD: CMD's peak RSS (/usr/bin/time -v in CMD, before the
# measured tool; another tool may feed it through a pipe).
rss() {
	local kb
	kb=$( { bash -o pipefail -c "$3" >/dev/null; } 2>&1 | awk -F: '/Maximum resident/ { gsub(/ /, "", $2); print $2 }')
	tag 2
	echo "$1: peak RSS $((kb / 1024)) MiB (goal $2)"
}

# sha256_speed: openssl speed's SHA-256 rate (SHA-NI when the CPU has it)
# on cache-hot 1 MiB buffers, in bytes per second, measured once.
sha256_bps=
sha256_speed() {
	[ -n "$sha256_bps" ] || sha256_bps=$(openssl speed -seconds 2 -bytes 1048576 -evp sha256 2>/dev/null | awk '/^sha256/ { print $2 * 1000 }')
	echo "$sha256_bps"
}

# header: the run's command, date, machine and commit, as Markdown.
header() {
	local src disk rev dirty=""
	src=$(findmnt -no SOURCE -T "$dir" 2>/dev/null || echo "?")
	disk=$(lsblk -ndo PKNAME "$src" 2>/dev/null | head -1)
	[ -n "$disk" ] || disk=$(basename "$src")
	disk=$(lsblk -dno NAME,MODEL,SIZE,ROTA "/dev/$disk" 2>/dev/null | awk '{ r = $NF ? "rotational" : "non-rotational"; $NF = ""; print $0 r }' || echo "$src")
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=" (with uncommitted changes)"
	echo "| run | |"
	echo "| --- | --- |"
	echo "| command | \`scripts/bench.sh --report -n $runs -s $size_mib $sections\` |"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| machine | $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(systemd-detect-virt 2>/dev/null || echo "virtualization unknown") |"
	echo "| disk | $dir on $src ($disk) |"
	echo "| commit | \`$rev\`$dirty |"
	echo "| load average | $(cut -d' ' -f1-3 /proc/loadavg) at the start |"
	echo "| tools | $(dd --version | head -1), $(pv --version 2>/dev/null | head -1 | cut -d' ' -f1-2), lz4 $(lz4 -V 2>/dev/null | grep -o 'v[0-9.]*' | head -1), zstd $(zstd -V 2>/dev/null | grep -o 'v[0-9.]*' | head -1), $(fio --version 2>/dev/null || echo no fio), $(openssl version | cut -d' ' -f1-2), $(b3sum --version 2>/dev/null || echo no b3sum) |"
	echo
}

# make_mixed IMG: an ext4 image of size_mib MiB about half full of the kind
# of files a real volume holds, so compression ratios mean something.
make_mixed() {
	local img=$1 tree=$dir/mixed-tree budget=$((size_mib << 19)) i=0
	[ "$(stat -c %s "$img" 2>/dev/null || echo 0)" = "$bytes" ] && return
	echo "making a ${size_mib} MiB ext4 image about half full of files: $img" >&2
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

# warm_copy IMG: a copy of IMG in /dev/shm when memory allows, else IMG:
# the "warm" rows read it from memory, so they measure the CPU side
# (blkcat reads with O_DIRECT, which a cached file on a disk does not
# help; on tmpfs it reads memory or falls back to buffered reads).
warm_copy() {
	local w=/dev/shm/blkpipe-bench-$(basename "$1") avail
	avail=$(awk '/^MemAvailable/ { printf "%d", $2 * 1024 }' /proc/meminfo)
	if [ "$(stat -c %s "$1")" -lt $((avail / 3)) ]; then
		[ "$(stat -c %s "$w" 2>/dev/null || echo 0)" = "$(stat -c %s "$1")" ] || cp "$1" "$w"
		echo "$w"
	else
		echo "$1"
	fi
}

# cratio NAME A B: the compressed sizes of A's and B's output, as a
# percentage of the input, and B's over A's (within 2 % is the goal).
cratio() {
	local a b
	a=$(bash -c "$2" | wc -c)
	b=$(bash -c "$3" | wc -c)
	tag 2
	awk -v n="$1" -v a="$a" -v b="$b" -v by="$bytes" 'BEGIN {
		printf "%-34s blkpipe %6.2f%% of input  anchor %6.2f%%  size blkpipe/anchor %.3f  goal within 2%%\n", n, 100 * a / by, 100 * b / by, a / b }'
}

if [ "$report" = 1 ]; then
	header
	echo '```text'
fi
for s in $sections; do
	[ "$report" = 0 ] || export BLKPIPE_BENCH_SECTION=$s
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
	aio)
		echo "== aio: O_DIRECT reads through native AIO vs a goroutine per pread (BLKPIPE_AIO=0), cold"
		ratio "blkcat IMG >/dev/null vs BLKPIPE_AIO=0" "report" drop_caches \
			"$B/blkcat -q $img >/dev/null" "BLKPIPE_AIO=0 $B/blkcat -q $img >/dev/null"
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
			tag
			awk -v a="$c1" -v b="$c2" -v n="$bytes" 'BEGIN {
				printf "blkcat leaves %.2f%% of the image cached (goal <= 1%%); dd without iflag=direct leaves %.2f%%\n", 100 * a / n, 100 * b / n }'
			drop_caches
		fi
		;;
	rss)
		echo "== peak RSS at default settings (/usr/bin/time -v)"
		rss "blkcat IMG" "<= 64 MiB" "/usr/bin/time -v $B/blkcat -q $img"
		rss "blkcat if=IMG of=/dev/null" "<= 64 MiB" "/usr/bin/time -v $B/blkcat if=$img of=/dev/null status=none"
		rss "blkwrite OUT < pipe" "<= 64 MiB" "$B/blkcat -q $img | /usr/bin/time -v $B/blkwrite -q $out"
		rss "blkcat -z zstd IMG, GOMAXPROCS=8" "<= 64 MiB" "GOMAXPROCS=8 /usr/bin/time -v $B/blkcat -q -z zstd $img"
		rss "blkcat -z zstd:10 IMG" "report" "/usr/bin/time -v $B/blkcat -q -z zstd:10 $img"
		rss "blkcat --frame IMG" "<= 64 MiB" "/usr/bin/time -v $B/blkcat -q --frame $img"
		rss "blkcat -z lz4 IMG" "<= 64 MiB" "/usr/bin/time -v $B/blkcat -q -z lz4 $img"
		rss "blkwrite OUT < blkcat -z lz4" "<= 64 MiB" "$B/blkcat -q -z lz4 $img | /usr/bin/time -v $B/blkwrite -q $out"
		rss "blkcat --digest IMG" "<= 64 MiB" "/usr/bin/time -v $B/blkcat --digest $img"
		rm -f "$out"
		;;
	pvcat)
		echo "== pvcat: against pv and cat|cat|cat (scripts/bench-pvcat.sh)"
		scripts/bench-pvcat.sh "$((size_mib < 2048 ? size_mib : 2048))" "$runs"
		;;
	digest)
		echo "== digest: the speed of the whole-stream digest, one core"
		# SHA-256's speed is stated here once; docs/PERFORMANCE.md cites
		# this line. openssl speed hashes cache-hot buffers, so it is an
		# upper bound for data just read from a disk.
		if command -v openssl >/dev/null; then
			tag; awk -v s="$(sha256_speed)" 'BEGIN { printf "SHA-256, openssl speed (1 MiB buffers, cache-hot): %.0f MB/s on one core\n", s / 1e6 }'
		fi
		if command -v b3sum >/dev/null; then
			cat "$img" >/dev/null
			t=$(timeit "b3sum --num-threads 1 $img")
			tag; awk -v t="${t% *}" -v by="$bytes" 'BEGIN { printf "BLAKE3, b3sum --num-threads 1 (the image, cache-hot): %.0f MB/s\n", by / t / 1e6 }'
		fi
		# blkcat's own digest choice, once blkcat has --digest.
		if "$B/blkcat" --help 2>&1 | grep -q -- '--digest'; then
			ratio "blkcat --frame --digest=blake3 vs sha256" "report" drop_caches \
				"$B/blkcat -q --frame --digest=blake3 $img >/dev/null" "$B/blkcat -q --frame --digest=sha256 $img >/dev/null"
		else
			echo "(blkcat has no --digest yet: no digest comparison)"
		fi
		# blkcat --digest SRC against b3sum on a loop device, which b3sum
		# hashes on one thread (it cannot mmap a device). Warm: the
		# backing image is in memory (tmpfs); cold: on disk, caches dropped.
		if [ "$(id -u)" = 0 ] && command -v b3sum >/dev/null && "$B/blkcat" --help 2>&1 | grep -q -- '--check'; then
			for temp in warm cold; do
				back=$img prep=drop_caches
				[ $temp = cold ] || { back=$(warm_copy "$img"); prep=:; }
				dev=$(losetup --find --show --read-only "$back")
				trap 'losetup -d "$dev" 2>/dev/null || true' EXIT
				tag
				if [ "$("$B/blkcat" --digest "$dev")" = "$(b3sum "$dev")" ]; then
					echo "blkcat --digest LOOP ($temp): the same line as b3sum LOOP"
				else
					echo "blkcat --digest LOOP ($temp): DIFFERS from b3sum LOOP"
				fi
				ratio "blkcat --digest LOOP vs b3sum ($temp)" ">= 1.5x" "$prep" \
					"$B/blkcat --digest $dev" "b3sum $dev"
				# The loop driver's one worker copies every byte from
				# the backing file, for both tools: its own read rate
				# is the ceiling of either.
				eval "$prep"
				t=$(wall dd if="$dev" of=/dev/null bs=4M iflag=direct status=none)
				tag; awk -v t="$t" -v by="$bytes" -v temp="$temp" 'BEGIN { printf "  the loop device itself reads at %.0f MB/s (%s; dd bs=4M iflag=direct)\n", by / t / 1e6, temp }'
				losetup -d "$dev"
				trap - EXIT
			done
			# A RAM block device (zram; random data is stored as is):
			# no loop worker in the way, so the device reads as fast as
			# the reading threads copy, like a fast NVMe disk.
			if [ -w /sys/class/zram-control/hot_add ]; then
				z=$(cat /sys/class/zram-control/hot_add)
				trap 'echo "$z" >/sys/class/zram-control/hot_remove 2>/dev/null || true' EXIT
				echo "$bytes" >"/sys/block/zram$z/disksize"
				dd if="$img" of="/dev/zram$z" bs=4M oflag=direct status=none
				tag
				if [ "$("$B/blkcat" --digest "/dev/zram$z" | cut -d' ' -f1)" = "$(b3sum "/dev/zram$z" | cut -d' ' -f1)" ]; then
					echo "blkcat --digest ZRAM: the same digest as b3sum ZRAM"
				else
					echo "blkcat --digest ZRAM: DIFFERS from b3sum ZRAM"
				fi
				ratio "blkcat --digest ZRAM vs b3sum (a RAM block device)" ">= 1.5x" : \
					"$B/blkcat --digest /dev/zram$z" "b3sum /dev/zram$z"
				echo "$z" >/sys/class/zram-control/hot_remove
				trap - EXIT
			fi
		fi
		;;
	frame)
		echo "== frame: blkcat --frame / -z and blkwrite's framed receiver vs lz4 and zstd"
		mixed=$dir/mixed.img
		make_mixed "$mixed"
		wimg=$(warm_copy "$img") wmixed=$(warm_copy "$mixed")
		ratio "blkcat --frame RANDOM vs blkcat (warm)" ">= 0.95x" : \
			"$B/blkcat -q --frame $wimg >/dev/null" "$B/blkcat -q $wimg >/dev/null"
		ratio "blkcat --frame RANDOM vs blkcat" ">= 0.95x" drop_caches \
			"$B/blkcat -q --frame $img >/dev/null" "$B/blkcat -q $img >/dev/null"
		# The ceiling: the SHA-256 of the whole source is one serial pass,
		# so a disk that reads faster than one core hashes caps --frame at
		# the hash's speed (section digest prints it). The second row is
		# the plain way to prove a copy: read, then one SHA-256.
		if command -v openssl >/dev/null; then
			tag
			awk -v by="$bytes" -v f="$last_a" -v p="$last_b" -v sha="$(sha256_speed)" 'BEGIN {
				printf "  the disk read %.0f MB/s; --frame reaches %.0f %% of openssl'"'"'s SHA-256 speed, so its ratio can be at most %.2fx\n",
					by / p / 1e6, 100 * by / f / sha, (sha < by / p ? sha / (by / p) : 1) }'
			ratio "blkcat --frame RANDOM vs blkcat | openssl sha256" "report" drop_caches \
				"$B/blkcat -q --frame $img >/dev/null" "$B/blkcat -q $img | openssl dgst -sha256 >/dev/null"
		fi
		ratio "blkcat -z lz4 MIXED vs lz4 -1 (warm)" ">= 1.0x" : \
			"$B/blkcat -q -z lz4 $wmixed >/dev/null" "lz4 -q -1 -c $wmixed >/dev/null"
		ratio "blkcat -z lz4 MIXED vs lz4 -1" ">= 1.5x" drop_caches \
			"$B/blkcat -q -z lz4 $mixed >/dev/null" "lz4 -q -1 -c $mixed >/dev/null"
		cratio "  compressed size, lz4" "$B/blkcat -q -z lz4 $mixed" "lz4 -q -1 -c $mixed"
		ratio "blkcat -z zstd MIXED vs zstd -1 -T0 (warm)" ">= 1.0x" : \
			"$B/blkcat -q -z zstd $wmixed >/dev/null" "zstd -q -1 -T0 -c $wmixed >/dev/null"
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
	delta)
		echo "== delta: refreshing an image with 1 % of its blocks changed (scripts/bench-delta.sh)"
		scripts/bench-delta.sh -n "$runs" -s "$size_mib" -d "$dir/delta"
		;;
	changed)
		if [ "$(id -u)" = 0 ]; then
			echo "== changed: changed blocks from reflink metadata, 1 % churn (scripts/bench-changed.sh)"
			scripts/bench-changed.sh -s "$size_mib" -d "$dir/changed"
		else
			echo "== changed: skipped (needs root for loop file systems)"
		fi
		;;
	changed-thin)
		if [ "$(id -u)" = 0 ]; then
			echo "== changed-thin: changed blocks of a thin LV in a QEMU guest, 1 % churn (scripts/bench-changed-thin.sh)"
			thin_mib=$((size_mib / 16))
			thin_mib=$((thin_mib < 64 ? 64 : thin_mib > 512 ? 512 : thin_mib))
			scripts/bench-changed-thin.sh -s "$thin_mib"
		else
			echo "== changed-thin: skipped (needs root for the guest)"
		fi
		;;
	ssh)
		if [ "$(id -u)" = 0 ]; then
			echo "== ssh: copies through ssh between two network namespaces (scripts/bench-ssh.sh)"
			# The figures come from the Go test behind the script: tag
			# each with the line of bench_test.go that prints it.
			go=internal/testenv/sshtest/bench_test.go
			scripts/bench-ssh.sh "$size_mib" | awk -v go="$go" -v s="$s" -v rep="$report" \
				-v l1="$(grep -n '"ssh login:' "$go" | cut -d: -f1)" \
				-v l2="$(grep -n '"ssh ceiling (zeros' "$go" | cut -d: -f1)" \
				-v l3="$(grep -n 'm.name, rates\[i\]' "$go" | cut -d: -f1)" '
				/^ssh login:/ { on = 1 }
				/^(--- |PASS|ok |FAIL)/ { on = 0 }
				!on || /^ *$/ { next }
				{ l = /^ssh login/ ? l1 : /^ *ssh ceiling \(zeros/ ? l2 : /MB\/s/ ? l3 : ""
				  if (rep && l != "") printf "%-26s %-6s ", go ":" l, s
				  print }'
		else
			echo "== ssh: skipped (needs root for network namespaces)"
		fi
		;;
	usr1)
		echo "== usr1: SIGUSR1 sent as exec succeeded (and 200us later), 200 starts each: how many died of it"
		# scripts/usr1race starts the tool with os.StartProcess, which
		# returns once exec succeeded, then sends SIGUSR1 and SIGTERM.
		go build -o "$dir/usr1race" ./scripts/usr1race
		# 0: at once; 200us: a little into the start-up (runtime and
		# package initialisation for blkpipe, ld.so and libc for dd).
		for delay in 0 200us; do
			d_dd=$("$dir/usr1race" 200 "$delay" "$(command -v dd)" if=/dev/zero of=/dev/null)
			for t in blkcat blkwrite; do
				d=$("$dir/usr1race" 200 "$delay" "$B/$t" of=/dev/null)
				tag
				awk -v t="$t" -v dl="$delay" -v d="$d" -v a="$d_dd" 'BEGIN {
					printf "%-34s blkpipe %3d/200 died of SIGUSR1  anchor dd %3d/200  ratio %s  goal <= dd\n",
						"usr1 after " dl ": " t, d, a, d ? sprintf("%.2fx", a / d) : (a ? "inf" : "n/a") }'
			done
		done
		;;
	*) echo "unknown section $s" >&2; exit 2 ;;
	esac
done
rm -f /dev/shm/blkpipe-bench-* # warm_copy's
if [ "$report" = 1 ]; then
	echo '```'
	echo
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
fi
