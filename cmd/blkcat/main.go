// Blkcat reads a block device or image fast and writes it to standard
// output or a file; it is a drop-in replacement for dd on the reading side.
//
// Synopsis:
//
//	blkcat [--bs N] [--offset N] [--length N] [-q] [SRC] [dd operands...]
//	blkcat if=SRC [of=DST] [bs=N] [count=N] [skip=N] [status=...] ...
//	blkcat --sums[=BS] SRC
//	blkcat --against SUMS [-z CODEC] SRC
//	blkcat --resume TOKEN [-z CODEC] SRC
//	blkcat --digest[=ALG] [SRC...]
//	blkcat --check SRC...
//	blkcat --changed-from BASE [--changes FILE] [--resume TOKEN] [-z CODEC] SRC
//
// blkcat accepts GNU dd's operands with dd's meaning and prints dd's
// statistics, but reads regular files and block devices with O_DIRECT in
// large aligned chunks with several reads in flight, overlapping reading and
// writing, and leaves the page cache as it was.
//
// Exit codes: 0 success, 1 failure, 2 usage, 3 refused by --allow-read,
// 130 interrupted.
package main

import (
	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddtool"
)

var usage = `Usage: blkcat [OPTIONS] [SRC] [OPERAND]...
Copy SRC (default standard input) to standard output, fast, as dd would.

Conventional options:
  --bs N        block size for reads and writes (dd's bs=)
  --offset N    start reading N bytes into SRC
  --length N    copy at most N bytes
  -q, --quiet   no statistics (status=none)
  --frame       write a framed stream: every block checksummed, zero blocks
                sent as ZERO records, the digest of the source at the end;
                blkwrite recognises it, writes it and verifies it
  --digest=ALG  the digest a framed stream carries (with --frame, -z,
                --against, --resume): blake3 (default, on all cores) or
                sha256 (for blkwrite before BLAKE3); blkwrite prints
                "verified ALG HEX", what b3sum or sha256sum print for SRC
  -z, --compress CODEC
                --frame with compression on all cores: lz4, zstd (level 1)
                or zstd:LEVEL (1 to 22); none is --frame alone
  --sums[=BS]   write only SRC's block sums (an xxh3-64 digest per BS-byte
                block, default 4K: 0.2 % of SRC) for --against on the other side;
                a copy is kept in $BLKPIPE_STATE_DIR (default /var/lib/blkpipe)
                so that blkwrite can name a block that changed since; on the
                host where blkwrite keeps DST's sums from its last verified
                copy (see blkwrite --help), they are written without reading
                DST, unless DST changed since (said on stderr)
  --sums-reread  with --sums: read SRC even when kept sums are valid
  --against SUMS  a delta stream: send only the blocks whose digest differs
                from SUMS (a file, - for standard input, or <(...)); implies
                --frame, block size = the sums' block size; END still carries
                the digest of all of SRC, which blkwrite checks
  --resume TOKEN  carry on an interrupted framed copy from where blkwrite
                durably stopped (TOKEN from blkwrite --resume-point DST);
                implies --frame. With --changed-from: carry on an
                interrupted changed-block delta, sending only the changed
                blocks from that point on; refused, sending nothing, when
                the token is of another base, snapshot or stream (exit 1)
  --progress    draw pv's bar (%, rate, ETA) on stderr in source bytes,
                when stderr is a terminal
  -f, --force   write a framed stream or sums to a terminal (refused
                otherwise, exit 1); draw --progress off a terminal (pv's -f)
  --json        end stderr with a JSON summary line (see README.md)
  --allow-read PATH  restricted mode for a read-only ssh forced command
                (repeatable): the client's command (SSH_ORIGINAL_COMMAND)
                may only read PATH (the same file or device, whatever path
                names it) to standard output, with --frame, -z, --sums,
                --against - or --resume; anything else is refused (exit 3)
  --digest[=ALG] SRC...
                without a stream option: print each SRC's digest exactly
                as b3sum (or sha256sum for sha256) does, reading with
                O_DIRECT and hashing on all cores; no SRC or - is standard
                input. --digest takes a value only after = or when the next
                word is blake3 or sha256. Exit 1 if a SRC cannot be read
  --check SRC...  rehash SRC against the digest map blkwrite keeps for it
                as a target (in $BLKPIPE_STATE_DIR): "ok, blake3 HEX", or
                the first MiB that differs and how many 64 KiB leaves do,
                exit 1; no map, a damaged map or another size also exit 1
  --changed-from BASE  a changed-block delta: SRC is a snapshot, BASE the
                snapshot the target's last verified copy was made from;
                reads only what changed since BASE (from BASE's and SRC's
                extents: reflink clones on XFS or btrfs, btrfs snapshot
                files; or from --changes), sends only the 4 KiB blocks that
                differ, and ends with SRC's BLAKE3 from BASE's leaf map, kept
                in $BLKPIPE_STATE_DIR by the run that sent BASE (the first
                run reads BASE once to make it); blkwrite refuses it unless
                the target holds BASE's copy. Fails, sending nothing, when
                there is no trustworthy change list (then use --against)
  --changes FILE  with --changed-from: the change list, as snapctl changes
                BASE SRC writes it (LVM thin and classic snapshots)
  -h, --help    this help
  -V, --version print the version and exit

` + ddtool.OperandsHelp + `On SIGUSR1 blkcat prints dd's statistics to stderr and carries on.
Regular files and block devices are read with O_DIRECT when they allow it.

Examples:
  blkcat /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data
  blkcat -z lz4 /dev/vg/snap | ssh root@backup blkwrite /dev/vg/data
  blkcat --offset 1M --length 64M disk.img > part.img
  blkcat --digest /dev/vg/snap; ssh root@backup blkcat --digest /dev/vg/data
  ssh root@backup blkcat --check /dev/vg/data   # a scrub for bit rot
  ssh backup blkcat --sums /dev/vg/data | blkcat --against - /dev/vg/snap -z lz4 |
      ssh backup blkwrite /dev/vg/data
  blkcat --resume "$(ssh backup blkwrite --resume-point /dev/vg/data)" /dev/vg/snap |
      ssh backup blkwrite /dev/vg/data
  blkcat --changed-from /srv/img/vm.base -z lz4 /srv/img/vm.new |
      ssh backup blkwrite /backup/vm.img

` + cli.ExitHelp("blkcat")

func main() {
	// ddtool.Main hands run the real world (os.Args, the standard files,
	// os.Getenv) under the name messages carry ("dd" through a link named
	// dd), and makes run's error the exit code: the one place that
	// happens (ddtool.ExitCode), after the message if not printed already.
	ddtool.Main("blkcat", run)
}
