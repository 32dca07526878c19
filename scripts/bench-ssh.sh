#!/usr/bin/env bash
# bench-ssh.sh: how fast each way of copying a disk image goes through real
# ssh between two network namespaces joined by a veth pair (the harness of
# internal/testenv/sshtest), once with the veth shaped to 1 Gbit/s (tc tbf) and once
# unshaped. One run of each; prints the source data rate (MB/s of the image,
# not of the stream) and its ratio to the limit: the link's 125 MB/s when
# shaped, or the ssh ceiling when that is lower, and always when unshaped.
# The ssh ceiling is zeros through ssh to /dev/null (blkcat /dev/zero | ssh
# blkwrite /dev/null), the best of a run before and one after the methods;
# one ssh login (the fastest of three) is taken off every timing. Numbers
# from a busy machine are noise: use a quiet one and SIZE >= 512.
#
# Methods: the classic recipe's dd bs=512 on both sides, dd bs=1M on both
# sides, blkcat | ssh blkwrite raw, and (when blkcat has it) --frame and
# -z lz4. Goals: raw >= 0.95 x the limit; -z lz4 above 1.0 x the link on
# the mixed image (half random data, half text, the rest free space).
#
# Usage: scripts/bench-ssh.sh [SIZE_MiB]   (default 1024; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 BLKPIPE_SSH_BENCH=1 BLKPIPE_SSH_BENCH_MIB=${1:-1024}
exec go test -v -count=1 -timeout 60m -run '^TestSSHBench$' ./internal/testenv/sshtest/
