package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/pipeio"
	"github.com/blkpipe/blkpipe/internal/progress"
	"golang.org/x/sys/unix"
)

// errInterrupted is returned when SIGINT or SIGTERM stopped the copy.
var errInterrupted = cli.ErrInterrupted

// stallError says no byte moved for the --stall time.
type stallError struct {
	after time.Duration
	bytes int64
}

func (e stallError) Error() string {
	return fmt.Sprintf("stalled: no data moved for %v (%d bytes copied)", e.after, e.bytes)
}

// run is pvcat without the process: it copies stdin to stdout as args say,
// drawing on stderr, and prints dd's bytes line for every value received on
// usr1. Cancelling ctx (SIGINT/SIGTERM) stops it with errInterrupted; a
// reader gone downstream (EPIPE on stdout) ends it with nil, as pv. It
// takes usr1 from main because main must install the handler before
// anything else.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, usr1 <-chan os.Signal) error {
	start := time.Now()
	cfg, err := parseArgs(args)
	if done, err := cli.HelpOrVersion(err, stdout, "pvcat", help); done {
		return err
	}
	if err != nil {
		return err
	}
	size := cfg.size
	if f, ok := stdin.(*os.File); ok && !cfg.sizeSet {
		if n, ok, err := streamSize(f); err == nil && ok {
			size = n
		}
	}
	if cfg.stopAt && size <= 0 {
		return cli.Usagef("-S needs a size: -s SIZE, or stdin a regular file or block device")
	}
	var jsonW io.Writer
	if cfg.json {
		jsonW = stderr
		if cfg.jsonFD >= 0 {
			if cfg.jsonFD == 0 || cfg.jsonFD == 1 {
				return cli.Usagef("invalid argument '%d' for '--json-fd': stdin and stdout carry the data", cfg.jsonFD)
			}
			var st unix.Stat_t
			if err := unix.Fstat(cfg.jsonFD, &st); err != nil {
				return cli.Usagef("invalid argument '%d' for '--json-fd': %w", cfg.jsonFD, err)
			}
			jsonW = os.NewFile(uintptr(cfg.jsonFD), fmt.Sprintf("fd %d", cfg.jsonFD))
		}
	}
	if cfg.pidfile != "" {
		// As pv: written before the copy, which it prevents if it
		// fails (status 1), and removed at the end, however run ends.
		if err := os.WriteFile(cfg.pidfile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return fmt.Errorf("-P: %w", err)
		}
		defer func() {
			if err := os.Remove(cfg.pidfile); err != nil {
				fmt.Fprintf(stderr, "pvcat: -P: %v\n", err)
			}
		}()
	}
	// Advisory: a pipe we cannot grow still works, only slower.
	for _, s := range []any{stdin, stdout} {
		if f, ok := s.(*os.File); ok {
			pipeio.Grow(f, pipeio.DefaultPipeSize)
		}
	}

	d := newDisplay(cfg, stderr, jsonW, size, start)
	var moved, firstAt atomic.Int64
	cp := &pipeio.Copier{
		BufSize:  int(cfg.bufSize),
		NoSplice: cfg.noSplice,
		Progress: func(n int) {
			if moved.Add(int64(n)) == int64(n) {
				firstAt.Store(time.Now().UnixNano())
			}
		},
	}
	if cfg.stopAt {
		cp.Max = size
	}
	if cfg.rateLimit > 0 {
		bs := cfg.bufSize
		if bs == 0 {
			bs = pipeio.DefaultPipeSize
		}
		// Grants of 1/20 s keep the stream smooth; credit for late
		// wakeups tops a grant up to one buffer and no more.
		grant := min(max(cfg.rateLimit/20, 1), max(bs/2, 1))
		cp.Throttle = progress.NewLimiter(cfg.rateLimit, int(grant), int(bs-grant), time.Now())
	}
	done := make(chan error, 1)
	go func() {
		_, err := cp.Copy(stdout, stdin)
		done <- err
	}()

	var tick, stallTick <-chan time.Time
	var ticker *time.Ticker
	interval := cfg.interval
	if d.active() {
		// As pv: the first update after -D when it is longer than the
		// interval, then one per interval. (JSON records too: -D holds
		// everything drawn per interval, but not the last record.)
		ticker = time.NewTicker(max(interval, d.delay))
		defer ticker.Stop()
		tick = ticker.C
	}
	stallAfter := cfg.stall
	lastMoved, lastMoveAt := int64(0), start
	if stallAfter > 0 {
		t := time.NewTicker(min(max(stallAfter/10, time.Millisecond), 250*time.Millisecond))
		defer t.Stop()
		stallTick = t.C
	}
	// clock starts the timer at the first byte for -W.
	clock := func() {
		if cfg.wait && !d.started {
			if f := firstAt.Load(); f != 0 {
				d.begin(time.Unix(0, f))
			}
		}
	}
	for {
		select {
		case <-tick:
			ticker.Reset(interval)
			clock()
			d.tick(time.Now(), moved.Load())
		case <-usr1:
			clock()
			d.usr1(time.Now(), moved.Load())
		case now := <-stallTick:
			if n := moved.Load(); n != lastMoved {
				lastMoved, lastMoveAt = n, now
			} else if now.Sub(lastMoveAt) >= stallAfter {
				clock()
				d.final(time.Now(), n, false)
				return stallError{stallAfter, n}
			}
		case <-ctx.Done():
			clock()
			d.final(time.Now(), moved.Load(), false)
			return errInterrupted
		case err := <-done:
			clock()
			if errors.Is(err, syscall.EPIPE) {
				// The reader downstream went away (write or splice
				// to a closed pipe): like pv, draw the last update
				// and end quietly with status 0. Not "done": the
				// input was not all copied.
				d.final(time.Now(), moved.Load(), false)
				return nil
			}
			d.final(time.Now(), moved.Load(), err == nil)
			return err
		}
	}
}

// display draws pvcat's progress: a redrawn bar, pv -n lines, JSON
// records, or nothing, and dd's line on SIGUSR1.
type display struct {
	bar, numeric bool
	stderr       io.Writer
	tty          *os.File      // stderr when it is a terminal, for its width
	fixedWidth   int           // -w; 0: ask the terminal
	delay        time.Duration // -D: the first update waits this long
	shown        bool          // the bar or a -n line was drawn
	jsonW        io.Writer
	meter        progress.Meter
	est          *progress.Estimator
	name         string
	size         int64
	start        time.Time
	started      bool // false while -W waits for the first byte
	lastLen      int  // length of the bar line on screen; 0 when none
}

func newDisplay(cfg *config, stderr, jsonW io.Writer, size int64, start time.Time) *display {
	d := &display{stderr: stderr, jsonW: jsonW, size: size, name: cfg.name, start: start, started: !cfg.wait,
		fixedWidth: cfg.width, delay: cfg.delay}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		d.tty = f
	}
	visual := !cfg.quiet && !(cfg.json && cfg.jsonFD < 0)
	d.numeric = visual && cfg.numeric
	d.bar = visual && !cfg.numeric && (d.tty != nil || cfg.force)
	var f progress.Fields
	for _, x := range []struct {
		on bool
		f  progress.Fields
	}{
		{cfg.fields.bar, progress.FieldBar}, {cfg.fields.timer, progress.FieldTimer},
		{cfg.fields.eta, progress.FieldETA}, {cfg.fields.rate, progress.FieldRate},
		{cfg.fields.average, progress.FieldAverage}, {cfg.fields.bytes, progress.FieldBytes},
		{cfg.fields.fineta, progress.FieldFinETA}, {cfg.name != "", progress.FieldName},
	} {
		if x.on {
			f |= x.f
		}
	}
	d.meter.Fields = f
	d.est = progress.NewEstimator(start, 5)
	return d
}

// active reports whether anything is drawn per interval.
func (d *display) active() bool { return d.bar || d.numeric || d.jsonW != nil }

// begin starts the clock at t (-W: the first byte).
func (d *display) begin(t time.Time) {
	d.start, d.started = t, true
	d.est.Restart(t)
}

func (d *display) status(now time.Time, bytes int64, done bool) progress.Status {
	if !d.started {
		now = d.start
	}
	d.est.Add(now, bytes)
	s := progress.Status{
		Name:    d.name,
		Now:     now,
		Elapsed: now.Sub(d.start),
		Bytes:   bytes,
		Size:    d.size,
		Rate:    d.est.Rate(),
		Average: d.est.Average(),
		Done:    done,
	}
	s.ETA, s.ETAKnown = d.est.ETA(d.size)
	return s
}

func (d *display) tick(now time.Time, bytes int64) {
	if !d.started {
		return // pv -W shows nothing before the first byte
	}
	d.draw(d.status(now, bytes, false), false)
}

// final draws the last update; done says the copy completed.
func (d *display) final(now time.Time, bytes int64, done bool) {
	s := d.status(now, bytes, done)
	s.Final = true
	d.draw(s, true)
}

func (d *display) draw(s progress.Status, last bool) {
	if d.jsonW != nil {
		d.jsonW.Write(progress.JSON(s))
	}
	if last && d.delay > 0 && !d.shown {
		// -D, and the copy ended before the first update: as pv, no
		// last update either, so it leaves no trace.
		return
	}
	d.shown = d.shown || d.bar || d.numeric
	switch {
	case d.numeric:
		io.WriteString(d.stderr, d.meter.Numeric(s))
	case d.bar:
		d.meter.Width = d.width()
		line := d.meter.Line(s)
		pad := max(d.lastLen-len(line), 0)
		end := ""
		if last {
			end = "\n"
		}
		io.WriteString(d.stderr, "\r"+line+strings.Repeat(" ", pad)+end)
		d.lastLen = len(line)
		if last {
			d.lastLen = 0
		}
	}
}

// usr1 prints GNU dd's bytes line, clearing the bar first and redrawing it
// after.
func (d *display) usr1(now time.Time, bytes int64) {
	elapsed := time.Duration(0)
	if d.started {
		elapsed = now.Sub(d.start)
	}
	line := progress.BytesLine(bytes, elapsed) + "\n"
	if d.lastLen > 0 {
		line = "\r" + strings.Repeat(" ", d.lastLen) + "\r" + line
		d.lastLen = 0
		io.WriteString(d.stderr, line)
		d.tick(now, bytes)
		return
	}
	io.WriteString(d.stderr, line)
}
