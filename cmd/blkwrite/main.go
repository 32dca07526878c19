// Blkwrite writes standard input (or a file) to a block device or file; it
// is a drop-in replacement for dd on the writing side, guarded for devices.
//
// Synopsis:
//
//	blkwrite [--bs N] [--offset N] [--length N] [-q] [DST] [dd operands...]
//	blkwrite of=DST [if=SRC] [bs=N] [seek=N] [conv=...] ...
//	blkwrite --resume-point DST
//	blkwrite --keep N DST < framed-stream
//	blkwrite --versions DST
//
// blkwrite accepts GNU dd's operands with dd's meaning and prints dd's
// statistics. A block device target is opened exclusively (a mounted or
// in-use device is refused before anything is written), written with
// O_DIRECT in large aligned blocks reassembled from short pipe reads, and
// made durable with fdatasync before blkwrite exits 0. An input of known size
// that does not fit the device is refused before writing.
//
// Exit codes: 0 success, 1 failure, 2 usage, 3 refused by --allow,
// 130 interrupted.
package main

import (
	"os"

	"github.com/blkpipe/blkpipe/internal/ddtool"
)

const usage = `Usage: blkwrite [OPTIONS] [DST] [OPERAND]...
Copy standard input (or if=) to DST (default standard output), as dd would,
guarded for block devices. A framed stream (blkcat --frame or -z) is
recognised by its header: blkwrite checks it before touching DST, writes each
record at its offset, verifies every checksum and the source's SHA-256, makes
DST durable, and then prints "verified sha256 DIGEST" as its last line.

Conventional options:
  --bs N        block size for reads and writes (dd's bs=)
  --offset N    start writing N bytes into DST
  --length N    copy at most N bytes
  -q, --quiet   no statistics (status=none)
  --raw         copy the input as raw data even if it is a framed stream
  --framed      refuse input that is not a framed stream
  --assume-zeroed  a framed stream's ZERO runs are already zeros on DST (a
                fresh thin volume): skip zeroing them; refused for a delta
  --no-verify   do not check the stream's whole-source SHA-256 (for a delta
                or resumed stream blkwrite otherwise reads the blocks the
                stream leaves out back from DST to check it)
  --resume-point  print the point an interrupted framed copy to DST can be
                resumed from (for blkcat --resume) and exit; 1 if there is none
  --keep N      before the first byte is written, keep what DST holds (its
                last verified copy) as a snapshot named after that copy's
                time and digest (thin or classic LV, btrfs, reflink image);
                once the new copy verifies keep the newest N versions; if it
                fails, say which version is the last good one and how to use
                it. A DST that cannot be snapshotted is refused. Needs a
                framed stream. In an --allow forced command it applies to
                every stream of that key; the client cannot change it
  --versions    list DST's kept versions (time verified, size, digest) and
                its current copy, and exit
  --allow PATH  restricted mode for an ssh forced command (repeatable): the
                client's command (SSH_ORIGINAL_COMMAND) may only write PATH,
                may not use if= or --allow; anything else is refused (exit 3)
  -h, --help    this help
  --version     print the version and exit

` + ddtool.OperandsHelp + `On SIGUSR1 blkwrite prints dd's statistics to stderr and carries on.

A block device DST is opened with O_EXCL (refused while mounted or in use),
written with O_DIRECT, and fdatasync'ed before a successful exit. A device
smaller than an input of known size is refused before anything is written;
from a pipe, running out of device stops with "target is smaller than the
input" and the number of bytes that landed. A framed stream from a smaller
source leaves the rest of a larger device as it was (blkwrite says so). A DST
in /dev that does not exist is refused (dd would create a file there, in RAM).

Resume: while writing a full framed stream to DST, blkwrite fdatasyncs it
every 2 s and records how far it got in $BLKPIPE_STATE_DIR (default
/var/lib/blkpipe), file <escaped DST path>.resume; the state is removed once
the copy is verified. A resumed stream (blkcat --resume) is accepted only if
it continues the recorded stream of the same source size.

Examples:
  ssh root@primary blkcat /dev/vg/snap | blkwrite /dev/vg/data
  blkwrite /dev/vg/data < /backup/data.blkp
  blkwrite --offset 1M part.img < part.bin
  blkcat --resume "$(ssh root@backup blkwrite --resume-point /dev/vg/data)" \
      /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data

Exit codes: 0 success, 1 failure, 2 usage error, 3 refused by --allow,
130 interrupted.
`

func main() {
	name := ddtool.ProgName("blkwrite", os.Args[0]) // "dd" through a link named dd
	stderr := ddtool.NewStderr(os.Stderr)
	err := run(name, os.Args[1:], os.Stdin, os.Stdout, stderr)
	// The one place errors become exit codes (ddtool.ExitCode), after
	// the message, if not printed already.
	os.Exit(stderr.ExitCode(ddtool.Exit(name, err)))
}
