// Blkwrite writes standard input (or a file) to a block device or file; it
// is a drop-in replacement for dd on the writing side, guarded for devices.
//
// Synopsis:
//
//	blkwrite [--bs N] [--offset N] [--length N] [-q] [DST] [dd operands...]
//	blkwrite of=DST [if=SRC] [bs=N] [seek=N] [conv=...] ...
//	blkwrite --resume-point DST
//	blkwrite --last [--json] DST
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
	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddtool"
)

var usage = `Usage: blkwrite [OPTIONS] [DST] [OPERAND]...
Copy standard input (or if=) to DST (default standard output), as dd would,
guarded for block devices. A framed stream (blkcat --frame or -z) is
recognised by its header: blkwrite checks it before touching DST, writes each
record at its offset, verifies every checksum and the source's digest (BLAKE3,
or SHA-256 from a sender that chose it), makes DST durable, and then prints
"verified blake3 DIGEST" (b3sum's value; "verified sha256 DIGEST" for
SHA-256) as its last line.

Conventional options:
  --bs N        block size for reads and writes (dd's bs=)
  --offset N    start writing N bytes into DST
  --length N    copy at most N bytes
  -q, --quiet   no statistics (status=none)
  --raw         copy the input as raw data even if it is a framed stream
  --framed      refuse input that is not a framed stream
  --assume-zeroed  a framed stream's ZERO runs are already zeros on DST (a
                fresh thin volume): skip zeroing them; refused for a delta
  --no-verify   do not check the stream's whole-source digest (for a delta
                or resumed stream blkwrite otherwise checks it from the
                digest map it keeps, or reads the blocks the stream leaves
                out back from DST)
  --resume-point  print the point an interrupted framed copy to DST can be
                resumed from (for blkcat --resume) and exit; 1 if there is none
  --last        print the last verified copy recorded for DST and exit:
                "verified blake3 HEX size N at TIME stream ID target PATH";
                1 if there is none, it is damaged, or DST changed since
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
                client's command (SSH_ORIGINAL_COMMAND) may only write PATH
                (the same file or device, whatever path names it) with a
                verified framed stream of PATH's size, or run
                "blkwrite --resume-point PATH" or "blkcat --sums PATH";
                anything else is refused (exit 3)
  --allow-raw   with --allow: also raw data, seek=, count=, oflag=append,
                conv=notrunc, --no-verify and --assume-zeroed
  --idle-timeout DURATION  give up after DURATION without input (5m under
                --allow, else never; 0 never), releasing DST
  --json        end stderr with a JSON summary line (see README.md); with
                --last: one JSON object instead
  -h, --help    this help
  -V, --version print the version and exit

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
it continues the recorded stream of the same source size. A changed-block
delta (blkcat --changed-from) records its points too, with the base's root
and the leaves written so far, and sets DST's kept state aside (.resume-*)
until it verifies; its resumed stream (blkcat --changed-from BASE --resume
TOKEN SNAP) must continue it from exactly that point (else exit 1, nothing
written) and is verified from the base's map with those leaves rehashed.

Kept state: after a verified framed copy blkwrite keeps, in the same
directory, a copy record (<escaped DST>.copy: digest, size, time, stream,
and DST's identity), the BLAKE3 digest map of DST (.b3map: one chaining
value per 64 KiB leaf) and DST's 4 KiB block sums (.keptsums); all three
are removed before blkwrite first writes to DST. A delta onto DST whose
record and map still match it (same device or file, size, a file's mtime,
and 8 random leaves read back hash as the map says) is verified by
rehashing only the leaves its blocks touch; otherwise blkwrite says why and
reads the whole of DST back, as before. blkcat --sums DST answers from the
kept sums under the same conditions (--sums-reread reads DST).

Examples:
  ssh root@primary blkcat /dev/vg/snap | blkwrite /dev/vg/data
  blkwrite /dev/vg/data < /backup/data.blkp
  blkwrite --offset 1M part.img < part.bin
  blkcat --resume "$(ssh root@backup blkwrite --resume-point /dev/vg/data)" \
      /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data

` + cli.ExitHelp("blkwrite")

func main() {
	// ddtool.Main hands run the real world (os.Args, the standard files,
	// os.Getenv) under the name messages carry ("dd" through a link named
	// dd), and makes run's error the exit code: the one place that
	// happens (ddtool.ExitCode), after the message if not printed already.
	ddtool.Main("blkwrite", run)
}
