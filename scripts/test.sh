#!/usr/bin/env bash
# Runs every blkpipe test: installs the packages the tests need (as root on
# Debian), vet, the unit and integration tests (loop devices, filesystems,
# sshd in network namespaces and LVM in a QEMU guest need root; without it
# those tests skip and say why, and with CI=true they fail), then short fuzz
# runs. It ends with the skipped tests, their reasons and the counts.
# Usage: scripts/test.sh [go test flags...] [./package...]
# (no package: ./...). BLKPIPE_NO_INSTALL=1 skips the package install,
# BLKPIPE_NO_FUZZ=1 the fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0

# install_packages installs what scripts/packages.txt lists (the one list;
# .ci/run relies on it) with apt-get, only when running as root on Debian and
# only if one is missing, so a rerun starts at once.
install_packages() {
	local p pkgs missing=()
	mapfile -t pkgs < <(sed 's/#.*//; s/[[:space:]]//g; /^$/d' scripts/packages.txt)
	if [ -n "${BLKPIPE_NO_INSTALL:-}" ]; then
		echo "== packages: BLKPIPE_NO_INSTALL is set, not installing scripts/packages.txt"
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "== packages: not root, not installing scripts/packages.txt; tests needing them skip and say why"
		return
	fi
	if [ ! -e /etc/debian_version ] || ! command -v apt-get >/dev/null; then
		echo "== packages: not Debian, install scripts/packages.txt yourself; tests needing them skip and say why"
		return
	fi
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed' || missing+=("$p")
	done
	if [ "${#missing[@]}" = 0 ]; then
		echo "== packages: all ${#pkgs[@]} of scripts/packages.txt installed"
		return
	fi
	echo "== packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}
install_packages

# Arguments starting with ./ are packages; the rest go to go test.
flags=() pkgs=()
for a in "$@"; do
	case $a in
	./*) pkgs+=("$a") ;;
	*) flags+=("$a") ;;
	esac
done
[ "${#pkgs[@]}" != 0 ] || pkgs=(./...)

echo "== go vet"
go vet "${pkgs[@]}"
echo "== go test"
# go test's ok/FAIL line per package, failed tests in full, then every
# skipped test with its reason and "N passed, N failed, N skipped".
testsum=$(mktemp)
trap 'rm -f "$testsum"' EXIT
go build -o "$testsum" ./internal/testenv/testsum
go test -json -count=1 -timeout 75m ${flags[@]+"${flags[@]}"} "${pkgs[@]}" | "$testsum"
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
