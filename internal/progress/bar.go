package progress

import (
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar redraws pv's one-line display (Meter, DefaultFields) in place on a
// terminal, for a tool that copies a source of known size and knows its
// position in it: blkcat --progress. Other text written through the Bar
// (dd's statistics on SIGUSR1, warnings) first erases the line; the next
// Draw puts it back, so the two never share a line.
//
// All methods are concurrency-safe.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	tty     *os.File // for the width; nil: 80 columns
	meter   Meter
	est     *Estimator
	size    int64
	started bool
	lastLen int // length of the line on screen; 0 when none
}

// NewBar returns a Bar drawing on w; tty, when not nil, is the terminal
// whose width the line fits.
func NewBar(w io.Writer, tty *os.File) *Bar {
	return &Bar{w: w, tty: tty, meter: Meter{Fields: DefaultFields}}
}

// Start starts the clock at start for a transfer of size bytes (0 or less:
// unknown, shown as pv shows it). Draw draws nothing before Start.
func (b *Bar) Start(start time.Time, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.est = NewEstimator(start, 5)
	b.size = max(size, 0)
	b.started = true
}

// Draw redraws the line for bytes moved by now; final draws the last one,
// done saying whether the transfer completed, and ends it with a newline.
func (b *Bar) Draw(now time.Time, bytes int64, final, done bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		return
	}
	b.est.Add(now, bytes)
	s := Status{
		Now:     now,
		Elapsed: b.est.Elapsed(now),
		Bytes:   bytes,
		Size:    b.size,
		Rate:    b.est.Rate(),
		Average: b.est.Average(),
		Done:    done,
		Final:   final,
	}
	s.ETA, s.ETAKnown = b.est.ETA(b.size)
	b.meter.Width = Width(b.tty)
	line := b.meter.Line(s)
	end := ""
	if final {
		end = "\n"
	}
	io.WriteString(b.w, "\r"+line+strings.Repeat(" ", max(b.lastLen-len(line), 0))+end)
	b.lastLen = len(line)
	if final {
		b.lastLen = 0
		b.started = false // nothing after the last line
	}
}

// Write erases the line if it is on screen and writes p.
func (b *Bar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastLen > 0 {
		io.WriteString(b.w, "\r"+strings.Repeat(" ", b.lastLen)+"\r")
		b.lastLen = 0
	}
	return b.w.Write(p)
}

// Run draws the line once a second, for the total count returns, until
// stop is closed.
func (b *Bar) Run(count func() int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			b.Draw(now, count(), false, false)
		case <-stop:
			return
		}
	}
}
