#!/usr/bin/env bash
# Changed-block benchmark on a thin logical volume (issue 17), the guest
# half of scripts/bench-changed.sh: TestChangedThinBench boots a QEMU guest
# (internal/testenv/qemutest) with a thin pool of 64 KiB chunks, gives a
# thin volume of random data a verified first copy on two disks, then 1 %
# churn (scattered 4 KiB writes, then 1 MiB runs), each night refreshed
# with snapctl changes BASE NEW + blkcat --changed-from BASE --changes |
# blkwrite and, on the other disk, with the sums delta it replaces. It
# prints, measured in the guest: bytes read from the snapshots and from the
# target (/sys/block stat) against the 64 KiB leaves the changes touch,
# bytes on the wire against the changed blocks, and the wall ratio. The
# guest runs under TCG (no KVM): ratios only, no rates.
#
# Usage: scripts/bench-changed-thin.sh [-s SIZE_MiB]   (default 256; needs root)
# With BLKPIPE_BENCH_SECTION set (scripts/bench.sh --report), each line is
# prefixed with the line of the Go test that printed it and the section.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=256
while getopts s: o; do
	case $o in
	s) size_mib=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE_MiB]" >&2; exit 2 ;;
	esac
done
export CGO_ENABLED=0 BLKPIPE_THIN_BENCH=1 BLKPIPE_THIN_BENCH_MIB=$size_mib
go=cmd/snapctl/changed_bench_test.go
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -v -count=1 -timeout 60m -run '^TestChangedThinBench$' ./cmd/snapctl/ >"$out" 2>&1 || {
	cat "$out" >&2
	exit 1
}
# The figure lines are "LINE<tab>TEXT", LINE the line of $go that printed
# TEXT.
awk -F '\t' -v go="$go" -v s="${BLKPIPE_BENCH_SECTION:-}" '
	NF == 2 && $1 ~ /^[0-9]+$/ {
		if (s != "") printf "%-26s %-6s ", go ":" $1, s
		print $2 }' "$out"
