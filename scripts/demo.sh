#!/usr/bin/env bash
# blkpipe demo: builds the tools, makes a sample disk image holding a real
# ext4 filesystem, copies it through the pipeline the way a backup would go
# over ssh, and proves both sides are identical: with b3sum when it is
# installed (the BLAKE3 digest blkwrite verifies), else blkcat --digest if
# this blkcat has it, else sha256sum. No root, no real disk.
# Usage: scripts/demo.sh [WORKDIR]
# The images (about 140 MB) go to WORKDIR and are kept there; without it, to
# a temporary directory that is removed at the end, also on failure or Ctrl-C.
set -euo pipefail
if [ $# -ge 1 ]; then
	mkdir -p "$1"
	work=$(cd "$1" && pwd) # relative to where the demo was started
	keep=yes
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/blkpipe-demo.XXXXXX")
	keep=no
	trap 'rm -rf "$work"' EXIT
fi
cd "$(dirname "$0")/.."
top=$(pwd)
mkdir -p "$top/bin"
export CGO_ENABLED=0

echo "== building blkcat, blkwrite, pvcat into bin/"
for t in blkcat blkwrite pvcat; do
	[ -d "cmd/$t" ] && go build -o "bin/$t" "./cmd/$t"
done
PATH=$top/bin:$PATH

echo "== making a 64 MiB disk image with an ext4 filesystem in $work"
src=$work/source.img
rm -rf "$work/tree" && mkdir -p "$work/tree/docs" "$work/tree/data"
for i in $(seq 1 200); do
	printf 'line %d of a small text file, as a pool holds many of them\n' $(seq 1 $((i % 40 + 1))) >"$work/tree/docs/file$i.txt"
done
head -c 8M /dev/urandom >"$work/tree/data/random.bin"
head -c 4M /dev/zero >"$work/tree/data/zeros.bin"
if command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /sbin/mkfs.ext4 ]; then
	rm -f "$src" && truncate -s 64M "$src"
	PATH=$PATH:/sbin:/usr/sbin mkfs.ext4 -q -F -d "$work/tree" -L demo "$src"
else
	echo "(mkfs.ext4 not found: using a raw image of the same files)"
	cat "$work/tree"/*/* >"$src" && truncate -s 64M "$src"
fi

dst=$work/backup.img
rm -f "$dst"
# The pipeline a nightly backup runs, with ssh left out: a checked,
# compressed stream, progress in the middle, and a receiver that verifies.
echo "== copying: blkcat -z lz4 $src | pvcat | blkwrite $dst"
start=$(date +%s.%N)
blkcat -q -z lz4 "$src" | pvcat -N demo | blkwrite -q "$dst" 2>"$work/blkwrite.log" || { cat "$work/blkwrite.log" >&2; exit 1; }
end=$(date +%s.%N)
cat "$work/blkwrite.log"

# digest FILE: FILE's digest, by a tool other than the pipeline's receiver.
# b3sum and blkcat --digest print the BLAKE3 that blkwrite verified.
if command -v b3sum >/dev/null 2>&1; then
	check=b3sum
	digest() { b3sum --no-names <"$1"; }
elif blkcat --help 2>/dev/null | grep -q -- '--digest' &&
	blkcat -q --digest /dev/null 2>/dev/null | grep -Eq '^[0-9a-f]{64}'; then
	check="blkcat --digest"
	digest() { blkcat -q --digest "$1" | cut -d' ' -f1; }
else
	check=sha256sum
	digest() { sha256sum <"$1" | cut -d' ' -f1; }
fi
a=$(digest "$src")
b=$(digest "$dst")
echo "== report (digests by $check)"
printf '  source  %s  %s\n' "$a" "$src"
printf '  copy    %s  %s\n' "$b" "$dst"
if [ "$check" != sha256sum ] && grep -qx "blkwrite: verified blake3 $a" "$work/blkwrite.log"; then
	echo "  blkwrite verified this same BLAKE3 digest"
fi
printf '  stream  %s bytes on the wire (lz4, zero blocks elided)\n' "$(blkcat -q -z lz4 "$src" | wc -c)"
awk -v s="$start" -v e="$end" -v n="$(stat -c %s "$src")" 'BEGIN { printf "  bytes   %d in %.2f s\n", n, e - s }'
if [ "$a" = "$b" ]; then
	echo "  OK: the copy is byte-identical to the source"
	[ "$keep" = yes ] || echo "  (the images are removed now; scripts/demo.sh DIR keeps them in DIR)"
else
	echo "  FAILED: the copy differs from the source" >&2
	exit 1
fi
