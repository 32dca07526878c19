// Command pvcat copies its FILEs (or stdin) to stdout unchanged and shows
// how it is going, with pv's flags and dd's SIGUSR1 report.
//
// Synopsis:
//
//	pvcat [-pterbaI] [-n] [-q] [-f] [-s SIZE|@FILE] [-S] [-i SEC] [-N NAME]
//	      [-L RATE] [-B BYTES] [-W] [-D SEC] [-C] [-X] [-w WIDTH]
//	      [-H HEIGHT] [-P FILE] [--json] [--json-fd N] [--stall SEC]
//	      [--wire] [-V] [FILE...]
//
// Options (pv's meaning; -pterb when no field flag is given):
//
//	-p -t -e -r -a -b -I  bar+percent, timer, ETA, rate, average rate, bytes, finish time
//	-n        one number per interval, as pv -n prints
//	-q        no display      -f  draw even when stderr is not a terminal
//	-s SIZE   expected size (700G, 1.5GiB, "1 M", @FILE); default: the
//	          FILEs' (or stdin's) sizes when regular files or block devices
//	-S        stop after SIZE bytes (on the wire)
//	-i SEC    update interval (1, at least 0.1)   -N NAME  display prefix
//	-L RATE   rate limit in bytes/s    -B BYTES buffer and splice chunk (1 MiB)
//	-W        start the clock at the first byte
//	-D SEC    display nothing until SEC seconds have passed
//	-C        no splice(2)      -X  discard: write nothing
//	-w WIDTH  -H HEIGHT  terminal size (-H has no effect, as in pv without -c)
//	-P FILE   write the process ID to FILE, removed at exit
//	-V        print the version
//	--json    a JSON record per interval and at the end (stderr or --json-fd N)
//	--stall SEC  fail (exit 1) when no byte moved for SEC seconds
//	--wire    count wire bytes of a framed stream, not source bytes
//
// SEC is seconds (2, 0.5) or a duration (250ms, 5m, 1d). pv's -F -T -A -l
// -0 -c -E -R -d are refused with a usage error. FILEs are copied in
// order, - being stdin; one that cannot be opened is reported and skipped.
// A framed stream (docs/FORMAT.md) is counted in source bytes.
//
// Between pipes pvcat moves data with splice(2) and raises both pipes to
// 1 MiB; SIGUSR1 prints GNU dd's bytes line to stderr at any time.
//
// Exit status: 0 done, or the reader downstream went away (as pv); 1
// read/write error or stall; 2 usage, or a FILE could not be opened (as
// pv); 4 a FILE is the output file (as pv; 6 with 2); 10 no FILE could be
// opened (as pv); 130 interrupted.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/earlysig"
)

func main() {
	// An early `kill -USR1` (dd users send it in loops) is queued for the
	// display instead of killing pvcat: earlysig caught it from package
	// initialisation on.
	usr1 := earlysig.USR1()
	// pv ignores SIGPIPE and ends with status 0 when the reader downstream
	// goes away (`pv < img | head -c 10` under set -o pipefail), so pvcat
	// does not keep Go's default, which would kill it: a write to the gone
	// reader returns EPIPE instead, and run ends quietly. Stderr gone too
	// only loses the display, as for pv.
	signal.Ignore(syscall.SIGPIPE)

	// SIGINT and SIGTERM end the copy (exit 130); nohup'd or started in
	// the background by a shell, they stay ignored.
	ctx, stop := cli.SignalContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, usr1)
	stop()
	if !errors.As(err, new(reportedError)) {
		cli.PrintError(os.Stderr, "pvcat", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps run's error to pvcat's exit status; the table is in the
// usage text.
func exitCode(err error) int {
	var access accessError
	switch {
	case err == nil:
		return cli.ExitOK
	case errors.Is(err, cli.ErrUsage):
		return cli.ExitUsage
	case errors.Is(err, errInterrupted):
		return cli.ExitInterrupted
	case errors.As(err, &access):
		return access.code()
	default:
		return cli.ExitFailure
	}
}
