#!/usr/bin/env bash
# install.sh: build blkpipe's tools from this checkout and install them.
#
# Usage: scripts/install.sh [PREFIX]      (default PREFIX: /usr/local)
#
#   PREFIX/bin                        blkcat blkwrite pvcat snapctl replicate.sh
#                                     (the systemd and cron examples call
#                                     /usr/local/bin/replicate.sh)
#   PREFIX/share/doc/blkpipe          README.md, LICENSE, VERSION and the
#                                     examples (replicate.conf, systemd units,
#                                     cron line)
#   PREFIX/share/bash-completion/completions/{blkcat,blkwrite,pvcat,snapctl}
#   PREFIX/share/man/man1             man/*.1, once the checkout has them
#
# The binaries are static (CGO_ENABLED=0) and built with -trimpath. Their
# --version is what the go command stamps (internal/buildinfo reads
# runtime/debug.ReadBuildInfo and has no -ldflags -X variable to set): with
# -buildvcs=true, the module's pseudo-version or tag and the commit.
# (The go command finds no repository in a linked git worktree, and says
# "(devel)" there.) `git describe --tags --always --dirty` goes into VERSION.
#
# Environment: DESTDIR (staged install for packaging: files go under
# DESTDIR/PREFIX, PATH checks still name PREFIX); GO (go command, default
# go).
#
# Exit status: 0 installed; 1 a build or install step failed; 2 usage.
set -euo pipefail

me=install.sh
die() { echo "$me: $*" >&2; exit 1; }
case ${1:-} in
-h | --help) sed -n '/^# Usage:/,/^# Exit status/s/^# \{0,1\}//p' "$0"; exit 0 ;;
-*) echo "$me: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "$me: one PREFIX at most (see --help)" >&2; exit 2; }
prefix=${1:-/usr/local}
case $prefix in
/*) ;;
*) echo "$me: PREFIX '$prefix' is not an absolute path" >&2; exit 2 ;;
esac
prefix=${prefix%/}
dest=${DESTDIR:-}${prefix}
go=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
tools=(blkcat blkwrite pvcat snapctl)

command -v "$go" >/dev/null || die "go not on PATH (Go 1.26 or newer; or set GO=/path/to/go)"
version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null) || version=unknown

tmp=$(mktemp -d "${TMPDIR:-/tmp}/blkpipe-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Build. -buildvcs=true overrides a GOFLAGS=-buildvcs=false, so that a build
# from a git checkout knows its commit; outside one the go command stamps
# nothing and --version says "(devel)".
buildvcs=-buildvcs=false
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 && buildvcs=-buildvcs=true
echo "$me: building blkpipe $version (static, CGO_ENABLED=0)" >&2
for t in "${tools[@]}"; do
	(cd "$root" && CGO_ENABLED=0 "$go" build "$buildvcs" -trimpath -o "$tmp/$t" "./cmd/$t") ||
		die "go build ./cmd/$t failed"
	"$tmp/$t" --version >/dev/null || die "the built $t does not run ($t --version failed)"
done

# Refuse to overwrite a snapctl that is not ours: with PREFIX=/usr on
# Ubuntu, /usr/bin/snapctl is snapd's.
bin=$dest/bin
if [ -e "$bin/snapctl" ] && ! grep -qa 'github.com/blkpipe/blkpipe' "$bin/snapctl"; then
	die "$bin/snapctl exists and is not blkpipe's (Ubuntu's snapd ships a snapctl of its own); choose another PREFIX"
fi

# install_file MODE SRC DIR [NAME]
install_file() {
	install -d -m 0755 "$3"
	install -m "$1" "$2" "$3/${4:-$(basename "$2")}"
}
for t in "${tools[@]}"; do
	install_file 0755 "$tmp/$t" "$bin"
done
install_file 0755 "$root/scripts/replicate.sh" "$bin"

doc=$dest/share/doc/blkpipe
for f in "$root/README.md" "$root/LICENSE" "$root"/scripts/examples/*; do
	install_file 0644 "$f" "$doc"
done
echo "$version" >"$tmp/VERSION"
install_file 0644 "$tmp/VERSION" "$doc"

# bash-completion loads /…/completions/NAME when NAME is first completed:
# one script, installed under each tool's name.
for t in "${tools[@]}"; do
	install_file 0644 "$root/scripts/completion.bash" "$dest/share/bash-completion/completions" "$t"
done

# install_man: the man pages, generated from the tools' --help
# (internal/manpage), man/*.1 into PREFIX/share/man/man1.
install_man() {
	local m found=no
	for m in "$root"/man/*.1; do
		[ -e "$m" ] || continue
		install_file 0644 "$m" "$dest/share/man/man1"
		found=yes
	done
	[ $found = yes ] || echo "$me: no man pages in this checkout (man/*.1), none installed" >&2
}
install_man

echo "$me: installed blkpipe $version into ${DESTDIR:+$DESTDIR}$prefix" >&2

# Which snapctl will a shell run? On Ubuntu /usr/bin/snapctl is snapd's, a
# different program; replicate.sh and the examples call snapctl by name.
# By position on PATH, so that a DESTDIR install is judged as installed.
other='' onpath=no
IFS=: read -r -a dirs <<<"${PATH:-}"
for d in "${dirs[@]}"; do
	d=${d%/}
	if [ "$d" = "$prefix/bin" ]; then
		onpath=yes
		break
	fi
	if [ -n "$d" ] && [ -x "$d/snapctl" ] && [ ! -d "$d/snapctl" ]; then
		other=$d/snapctl
		break
	fi
done
if [ -n "$other" ]; then
	echo "$me: warning: $other comes before $prefix/bin/snapctl on PATH and is a different" \
		"program (Ubuntu's snapd ships /usr/bin/snapctl): put $prefix/bin first on PATH" \
		"(the systemd and cron examples do) or call $prefix/bin/snapctl by its full path" >&2
elif [ $onpath = no ]; then
	echo "$me: warning: $prefix/bin is not on PATH; add it (replicate.sh calls the tools by name)" >&2
fi
