package main

import (
	"encoding/hex"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/send"
)

// adminOptions are the flags for the person or script watching a copy:
// --progress, -f/--force and --json.
type adminOptions struct {
	progress bool // --progress: draw pv's display on stderr
	force    bool // -f: a stream to a terminal; --progress off a terminal
	json     bool // --json: a summary line at the end
}

// errTerminal refuses a binary stream to a terminal, as zstd refuses
// ("stdout is a console, aborting", status 1).
var errTerminal = errors.New("standard output is a terminal: refusing to write a binary stream to it; redirect it (> FILE, | blkwrite DST) or use -f to force")

// checkTerminal returns errTerminal when blkcat would write a framed stream
// or block sums to a terminal without -f. Raw data may go to a terminal,
// as dd's does.
func checkTerminal(adm adminOptions, opt send.Options, ops *ddargs.Operands, stdout *os.File) error {
	binary := opt.Frame || opt.Sums > 0 || opt.Against != "" || opt.Resume != ""
	if !binary || adm.force || ops.Of != "" || !progress.IsTerminal(stdout) {
		return nil
	}
	return errTerminal
}

// checkAdmin rejects combinations of the admin flags with dd's operands.
func checkAdmin(adm adminOptions, ops *ddargs.Operands) error {
	if adm.progress && ops.Status == ddargs.StatusProgress {
		return ddtool.Usage("--progress and status=progress cannot be combined (both redraw a line on stderr)")
	}
	return nil
}

// newBar returns the --progress display, drawn on stderr when it is a
// terminal or with -f (pv's -f), else nil.
func newBar(adm adminOptions, stderr io.Writer) *progress.Bar {
	if !adm.progress {
		return nil
	}
	var tty *os.File
	if s, ok := stderr.(*ddmsg.Stderr); ok {
		tty = s.File()
	} else if f, ok := stderr.(*os.File); ok {
		tty = f
	}
	if tty != nil && !progress.IsTerminal(tty) {
		tty = nil
	}
	if tty == nil && !adm.force {
		return nil
	}
	return progress.NewBar(stderr, tty)
}

// path names how blkcat sends, for --json.
func path(opt send.Options) string {
	switch {
	case opt.Sums > 0:
		return "sums"
	case opt.Against != "":
		return "delta"
	case opt.Resume != "":
		return "resume"
	case opt.Frame:
		return "full"
	}
	return "raw"
}

// newSummary returns the --json summary of this run, or nil; written
// counts the stream's bytes.
func newSummary(adm adminOptions, opt *send.Options, ops *ddargs.Operands) *ddtool.Summary {
	if !adm.json {
		return nil
	}
	s := &ddtool.Summary{Tool: "blkcat", Path: path(*opt), Source: ops.If, Target: ddtool.OutputName(ops)}
	if s.Source == "" {
		s.Source = "standard input"
	}
	if opt.Frame || opt.Sums > 0 {
		var written atomic.Int64
		opt.Written = &written
		s.Out = written.Load
	}
	return s
}

// watch starts the --progress display and the --json digest for the copy
// c sending through snd (nil for raw), and returns finish wrapped to draw
// the last line and note the digest, and stop, which ends the display.
func watch(bar *progress.Bar, sum *ddtool.Summary, c *ddcopy.Copier, snd *send.Sender, finish func(error) error) (func(error) error, func()) {
	var fw *frame.Writer
	if snd != nil {
		fw, _ = snd.Sink.(*frame.Writer)
	}
	if bar == nil && (sum == nil || fw == nil) {
		return finish, func() {}
	}
	count := c.R.C.Bytes.Load
	stop := make(chan struct{})
	if bar != nil {
		bar.Start(time.Now(), c.P.StreamSize(&c.In))
		go bar.Run(count, stop)
	}
	return func(err error) error {
		if finish != nil {
			err = finish(err)
		}
		if bar != nil {
			bar.Draw(time.Now(), count(), true, err == nil)
		}
		if sum != nil && fw != nil && err == nil {
			d := fw.Digest()
			sum.DigestAlg, sum.Digest = fw.Header().DigestAlg.String(), hex.EncodeToString(d[:])
		}
		return err
	}, func() { close(stop) }
}
