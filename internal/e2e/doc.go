// Package e2e tests blkcat and blkwrite end to end: the tests build the
// tools, run them on files, pipes and loop devices (as root), and compare
// their bytes, messages and exit codes with GNU dd's and with what the
// tools promise. It holds no code of its own.
package e2e
