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

// run is pvcat without the process: it copies its FILEs (stdin for "-" or
// none) to stdout as args say, drawing on stderr, and prints dd's bytes
// line for every value received on usr1. Cancelling ctx (SIGINT/SIGTERM)
// stops it with errInterrupted; a reader gone downstream (EPIPE on stdout)
// ends it with nil, as pv. Errors it has shown itself (a FILE that could
// not be opened, or any error when JSON goes to stderr) come back as a
// reportedError. It takes usr1 from main because main must install the
// handler before anything else.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, usr1 <-chan os.Signal) error {
	start := time.Now()
	cfg, err := parseArgs(args)
	if done, err := cli.HelpOrVersion(err, stdout, "pvcat", help); done {
		return err
	}
	if err != nil {
		return err
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
	d := newDisplay(cfg, stderr, jsonW, start)
	inputs, size := inputSizes(cfg.files, stdin, func(err error) { d.message(time.Now(), err) })
	if cfg.sizeSet {
		size = cfg.size
	}
	if cfg.stopAt && size <= 0 {
		return cli.Usagef("-S needs a size: -s SIZE, or FILEs (or stdin) that are regular files or block devices")
	}
	d.size = size
	if cfg.pidfile != "" {
		// As pv: written before the copy, which it prevents if it
		// fails (status 1), and removed at the end, however run ends.
		if err := os.WriteFile(cfg.pidfile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return d.reported(fmt.Errorf("-P: %w", err))
		}
		defer func() {
			if err := os.Remove(cfg.pidfile); err != nil {
				d.message(time.Now(), fmt.Errorf("-P: %w", err))
			}
		}()
	}
	// Advisory: a pipe we cannot grow still works, only slower.
	for _, s := range []any{stdin, stdout} {
		if f, ok := s.(*os.File); ok {
			pipeio.Grow(f, pipeio.DefaultPipeSize)
		}
	}

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
	t := &transfer{inputs: inputs, stdin: stdin, out: stdout, cp: cp, wire: &moved}
	if cfg.discard {
		t.out = io.Discard // pv -X: read and count, never write
	} else if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			t.outFI = fi
		}
	}
	if cfg.stopAt {
		t.limit = size
	}
	if !cfg.wire && !cfg.stopAt {
		// -S counts the wire: cutting a framed stream at a source
		// offset would make no sense.
		t.src = &source{given: -1}
		if cfg.sizeSet {
			t.src.given = cfg.size
		}
	}
	msgs, quit := make(chan error), make(chan struct{})
	defer close(quit)
	t.report = func(err error) bool {
		select {
		case msgs <- err:
			return true
		case <-quit:
			return false
		}
	}
	done := make(chan error, 1)
	go func() { done <- t.run() }()

	// count returns the bytes to show, source bytes in a framed stream,
	// and sets the display's size to match.
	count := func() int64 {
		if s := t.src; s != nil && s.framed.Load() {
			if s.header.Load() {
				d.size = max(s.size.Load(), 0)
			}
			return s.count.Load()
		}
		return moved.Load()
	}

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
			d.tick(time.Now(), count())
		case <-usr1:
			clock()
			d.usr1(time.Now(), count())
		case err := <-msgs:
			d.message(time.Now(), err)
		case now := <-stallTick:
			if n := moved.Load(); n != lastMoved {
				lastMoved, lastMoveAt = n, now
			} else if now.Sub(lastMoveAt) >= stallAfter {
				clock()
				d.final(time.Now(), count(), false)
				return d.reported(stallError{stallAfter, n})
			}
		case <-ctx.Done():
			clock()
			d.final(time.Now(), count(), false)
			return d.reported(errInterrupted)
		case err := <-done:
			clock()
			if errors.Is(err, syscall.EPIPE) {
				// The reader downstream went away (write or splice
				// to a closed pipe): like pv, draw the last update
				// and end quietly with status 0. Not "done": the
				// input was not all copied.
				d.final(time.Now(), count(), false)
				return nil
			}
			d.final(time.Now(), count(), err == nil)
			return d.reported(err)
		}
	}
}

// reportedError is an error run has shown already, as it happened or as a
// JSON line; main takes only the exit status from it.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// display draws pvcat's progress: a redrawn bar, pv -n lines, JSON
// records, or nothing, and dd's line on SIGUSR1.
type display struct {
	bar, numeric bool
	jsonErr      bool // JSON goes to stderr: so do errors, as JSON lines
	stderr       io.Writer
	tty          *os.File      // stderr when it is a terminal, for its width
	fixedWidth   int           // -w; 0: ask the terminal
	delay        time.Duration // -D: the first update waits this long
	shown        bool          // the bar or a -n line was drawn
	jsonW        io.Writer
	meter        progress.Meter
	est          *progress.Estimator
	name         string
	size         int64 // 0 unknown
	start        time.Time
	stamp        time.Time // wall clock of the last status, for "ts"
	started      bool      // false while -W waits for the first byte
	lastLen      int       // length of the bar line on screen; 0 when none
}

func newDisplay(cfg *config, stderr, jsonW io.Writer, start time.Time) *display {
	d := &display{stderr: stderr, jsonW: jsonW, name: cfg.name, start: start, started: !cfg.wait,
		fixedWidth: cfg.width, delay: cfg.delay, jsonErr: cfg.json && cfg.jsonFD < 0}
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
	d.stamp = now
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
		d.jsonW.Write(progress.JSONLine(d.stamp, s))
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
// after; when JSON goes to stderr, it writes a record instead.
func (d *display) usr1(now time.Time, bytes int64) {
	if d.jsonErr {
		d.draw(d.status(now, bytes, false), false)
		return
	}
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

// message shows err on stderr: "pvcat: ERR", clearing the bar first (the
// next update redraws it), or a JSON line when JSON goes to stderr.
func (d *display) message(now time.Time, err error) {
	if d.jsonErr {
		d.stderr.Write(progress.JSONError(now, err.Error()))
		return
	}
	if d.lastLen > 0 {
		io.WriteString(d.stderr, "\r"+strings.Repeat(" ", d.lastLen)+"\r")
		d.lastLen = 0
	}
	cli.PrintError(d.stderr, "pvcat", err)
}

// reported returns err for run to return: when JSON goes to stderr, err is
// written there as a JSON line first and comes back as a reportedError,
// so that main prints no plain text into the JSON stream.
func (d *display) reported(err error) error {
	var rep reportedError
	if err == nil || !d.jsonErr || errors.As(err, &rep) {
		return err
	}
	d.message(time.Now(), err)
	return reportedError{err}
}
