#!/usr/bin/env bash
# Runs every blkpipe test: vet, the unit and integration tests (loop devices,
# filesystems, sshd in network namespaces and LVM in a QEMU guest need root;
# without it those tests skip and say why), then short fuzz runs.
# Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 75m "$@" ./...
if [ -z "${BLKPIPE_NO_FUZZ:-}" ]; then
	for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | xargs -r dirname | sort -u); do
		for fn in $(grep -h '^func Fuzz' "$target"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
			echo "== fuzz $target $fn (${BLKPIPE_FUZZTIME:-20s})"
			go test -run '^$' -fuzz "^${fn}\$" -fuzztime "${BLKPIPE_FUZZTIME:-20s}" -fuzzminimizetime 5s "./$target"
		done
	done
fi
