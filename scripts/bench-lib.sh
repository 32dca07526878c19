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
