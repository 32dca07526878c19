// Blkcat reads a block device or image fast and writes it to standard
// output or a file; it is a drop-in replacement for dd on the reading side.
//
// Synopsis:
//
//	blkcat [--bs N] [--offset N] [--length N] [-q] [SRC] [dd operands...]
//	blkcat if=SRC [of=DST] [bs=N] [count=N] [skip=N] [status=...] ...
//
// blkcat accepts GNU dd's operands with dd's meaning and prints dd's
// statistics, but reads regular files and block devices with O_DIRECT in
// large aligned chunks with several reads in flight, overlapping reading and
// writing, and leaves the page cache as it was.
//
// Exit codes: 0 success, 1 failure, 2 usage, 130 interrupted.
package main

import (
	"os"

	"github.com/blkpipe/blkpipe/internal/ddtool"
)

const usage = `Usage: blkcat [OPTIONS] [SRC] [OPERAND]...
Copy SRC (default standard input) to standard output, fast, as dd would.

Conventional options:
  --bs N        block size for reads and writes (dd's bs=)
  --offset N    start reading N bytes into SRC
  --length N    copy at most N bytes
  -q            quiet: no statistics (status=none)
  --frame       write a framed stream: every block checksummed, zero blocks
                sent as ZERO records, the SHA-256 of the source at the end;
                blkwrite recognises it, writes it and verifies it
  -z CODEC      --frame with compression on all cores: lz4, zstd or zstd:LEVEL
  -h, --help    this help

` + ddtool.OperandsHelp + `On SIGUSR1 blkcat prints dd's statistics to stderr and carries on.
Regular files and block devices are read with O_DIRECT when they allow it.

Examples:
  blkcat /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data
  blkcat -z lz4 /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data
  blkcat --offset 1M --length 64M disk.img > part.img

Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.
`

func main() {
	os.Exit(ddtool.Main(ddtool.Profile{
		Name:       "blkcat",
		Positional: "if",
		Usage:      usage,
		ReadDirect: true,
		Sender:     true,
	}, os.Args[1:]))
}
