package testutil

// FakeSSH is a shell script that stands in for ssh where a test runs the
// "remote" side on the same machine: it skips ssh's options, then the
// host, and runs the remote command with sh -c. Install it on PATH as ssh
// (or pass it with replicate.sh --ssh).
const FakeSSH = `#!/bin/sh
while [ $# -gt 0 ]; do
	case $1 in
	-[oipFlc]) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
shift
exec sh -c "$*"
`
