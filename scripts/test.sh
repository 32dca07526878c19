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
# fuzz DIR FN: a short fuzz run. Go 1.26's coordinator can end a -fuzztime
# run that found nothing with a bare "context deadline exceeded" when a
# worker is mid-input at the deadline (golang/go#75804, fixed in Go 1.27):
# that one failure, with no failing input written, is run again once; any
# other failure, or the same one twice, fails.
fuzz() {
	local out rc=0
	out=$(mktemp)
	go test -run '^$' -fuzz "^$2\$" -fuzztime "${BLKPIPE_FUZZTIME:-20s}" -fuzzminimizetime 5s "./$1" 2>&1 | tee "$out" || rc=$?
	if [ "$rc" != 0 ] && tail -n 5 "$out" | grep -q '^    context deadline exceeded$' && ! grep -q 'Failing input written to' "$out"; then
		echo "== fuzz $1 $2: the Go 1.26 fuzztime race (golang/go#75804), no failing input; running it again"
		rc=0
		go test -run '^$' -fuzz "^$2\$" -fuzztime "${BLKPIPE_FUZZTIME:-20s}" -fuzzminimizetime 5s "./$1" || rc=$?
	fi
	rm -f "$out"
	return "$rc"
}
if [ -z "${BLKPIPE_NO_FUZZ:-}" ]; then
	for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | xargs -r dirname | sort -u); do
		for fn in $(grep -h '^func Fuzz' "$target"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
			echo "== fuzz $target $fn (${BLKPIPE_FUZZTIME:-20s})"
			fuzz "$target" "$fn"
		done
	done
fi
