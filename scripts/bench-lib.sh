# shellcheck shell=bash
# bench-lib.sh: sourced by the scripts/bench*.sh scripts, not run.
#
# tag [DEPTH] starts a figure line, in report mode (BLKPIPE_BENCH_SECTION
# set, as scripts/bench.sh --report does), with the script and line that
# print it and the section, so docs/PERFORMANCE.md can cite each figure by
# its line. DEPTH 1 (the default) names the line that called tag; 2, the
# line that called the function that called tag (ratio in bench.sh).
tag() {
	local d=${1:-1}
	[ -n "${BLKPIPE_BENCH_SECTION:-}" ] || return 0
	printf '%-26s %-6s ' "scripts/$(basename "${BASH_SOURCE[d]}"):${BASH_LINENO[d - 1]}" "$BLKPIPE_BENCH_SECTION"
}

# cputime FILE CMD: runs CMD with bash -o pipefail, its output discarded
# and its stderr kept in FILE.err, and writes to FILE the user+system CPU
# seconds of the whole pipeline (every process bash waited for).
cputime() {
	/usr/bin/time -f '%U %S' -o "$1" bash -o pipefail -c "$2" >/dev/null 2>"$1.err" || {
		echo "FAILED: $2" >&2
		cat "$1.err" >&2
		return 1
	}
	awk '{ printf "%.3f\n", $1 + $2 }' "$1" >"$1.cpu"
	mv "$1.cpu" "$1"
}

# options SPEC USAGE ARG...: parses ARG... with getopts SPEC (letters of
# n:s:p:d:) into runs, size_mib, pct and dir, which the script has set to
# its defaults; the operands left go to the array operands. An unknown
# option prints USAGE and exits 2.
# shellcheck disable=SC2034 # the variables are the sourcing script's
options() {
	local spec=$1 usage=$2 o OPTIND=1
	shift 2
	while getopts "$spec" o; do
		case $o in
		n) runs=$OPTARG ;;
		s) size_mib=$OPTARG ;;
		p) pct=$OPTARG ;;
		d) dir=$OPTARG ;;
		*) echo "$usage" >&2; exit 2 ;;
		esac
	done
	shift $((OPTIND - 1))
	operands=("$@")
}

# build PKG...: builds the commands of PKG... (without cgo, as released)
# into bin/ and sets B to that directory.
# shellcheck disable=SC2034 # B is the sourcing script's
build() {
	export CGO_ENABLED=0
	mkdir -p bin
	go build -o bin/ "$@"
	B=$(pwd)/bin
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# wall CMD ARG...: runs CMD ARG... and prints its wall seconds; fails if
# it fails.
wall() {
	local s e
	s=$(now)
	"$@" || return 1
	e=$(now)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }'
}

# say FORMAT EXPR...: one figure line, tagged with the line that called
# say: the printf FORMAT of the awk expressions EXPR..., which read the
# awk variables the script's array figures assigns ("NAME=VALUE" words).
# shellcheck disable=SC2154 # figures is the sourcing script's
say() {
	local f=$1 e v vars=()
	shift
	e=$(IFS=,; echo "$*")
	for v in "${figures[@]}"; do vars+=(-v "$v"); done
	tag 2
	awk "${vars[@]}" "BEGIN { printf \"$f\\n\", $e }"
}
