// Package progress counts bytes and records as they move and reports them:
// GNU dd's transfer statistics (records in/out, the bytes line, the
// status=progress line and the SIGUSR1 report) for blkcat and blkwrite, and
// pv-style displays for pvcat.
package progress

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Level says what a DD report prints, as dd's status= operand does.
type Level int

const (
	LevelDefault  Level = iota // records lines and the bytes line
	LevelNone                  // nothing but errors
	LevelNoxfer                // records lines only
	LevelProgress              // default, plus a line redrawn once a second
)

// Counters holds dd's transfer counts. The copy engine updates them and a
// signal handler may read them at any moment. This type is
// concurrency-safe.
type Counters struct {
	InFull, InPartial   atomic.Int64 // records read: whole ibs blocks, short ones
	OutFull, OutPartial atomic.Int64 // records written: whole obs blocks, short ones
	Truncated           atomic.Int64 // lines conv=block cut to cbs bytes
	Bytes               atomic.Int64 // bytes written to the output
}

// BytesLine formats GNU dd's transfer line without its newline, e.g.
// "1048576 bytes (1.0 MB, 1.0 MiB) copied, 0.5 s, 2.1 MB/s", with GNU's
// rounding, its singular "1 byte copied" and the SI and IEC sizes left out
// when they would carry no prefix.
func BytesLine(bytes int64, elapsed time.Duration) string {
	return bytesLine(bytes, elapsed, false)
}

func bytesLine(bytes int64, elapsed time.Duration, progress bool) string {
	n := uint64(max(bytes, 0))
	si := HumanBytes(n, false)
	iec := HumanBytes(n, true)
	rate := HumanRate(n, int64(elapsed))
	secs := max(elapsed, 0).Seconds()
	var t string
	if progress {
		t = strconv.FormatFloat(secs, 'f', 0, 64) + " s"
	} else {
		t = strconv.FormatFloat(secs, 'g', 6, 64) + " s"
	}
	lacksPrefix := func(s string) bool { return s[len(s)-2] == ' ' }
	switch {
	case lacksPrefix(si) && bytes == 1:
		return fmt.Sprintf("%d byte copied, %s, %s", bytes, t, rate)
	case lacksPrefix(si):
		return fmt.Sprintf("%d bytes copied, %s, %s", bytes, t, rate)
	case lacksPrefix(iec):
		return fmt.Sprintf("%d bytes (%s) copied, %s, %s", bytes, si, t, rate)
	default:
		return fmt.Sprintf("%d bytes (%s, %s) copied, %s, %s", bytes, si, iec, t, rate)
	}
}

// DD writes GNU dd's reports for one transfer to w (stderr). The engine calls
// Tick as it goes (status=progress), a signal handler calls Report on
// SIGUSR1, and the tool calls Report once at the end. All methods are
// concurrency-safe; they serialise their writes so lines never interleave.
type DD struct {
	C     Counters
	Level Level
	Start time.Time // the clock dd starts just before copying
	Prog  string    // program name for Diagnose, e.g. "blkcat"

	mu          sync.Mutex
	w           io.Writer
	progressLen int       // length of the last progress line on screen
	nextTick    time.Time // when status=progress prints next
}

// NewDD returns a reporter writing to w whose clock starts now.
func NewDD(w io.Writer, prog string, level Level) *DD {
	d := &DD{Level: level, Prog: prog, w: w}
	d.Restart(time.Now())
	return d
}

// Restart sets the start of the clock (dd starts it after opening files).
func (d *DD) Restart(now time.Time) {
	d.mu.Lock()
	d.Start = now
	d.nextTick = now.Add(time.Second)
	d.mu.Unlock()
}

// ScheduleFrom makes the first status=progress line due 1 s after t
// rather than 1 s after Start, when t is earlier: dd's clock starts a
// millisecond after it was started, a Go tool's only after its runtime
// and setup, and a line dd draws after a read 1 s into the pipeline
// would otherwise be missed. Start, and the times shown, stay as they are.
func (d *DD) ScheduleFrom(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Before(d.Start) {
		d.nextTick = t.Add(time.Second)
	}
}

// Tick prints the status=progress line if a second has passed since the
// last one, as dd does between reads. It is cheap when nothing is due.
func (d *DD) Tick(now time.Time) { d.TickBytes(now, -1) }

// TickBytes is Tick showing bytes copied instead of the counter's value
// (when bytes >= 0): what dd had written at the check it would have made
// between two records that one larger read brought in together.
func (d *DD) TickBytes(now time.Time, bytes int64) {
	if d.Level != LevelProgress {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Before(d.nextTick) {
		return
	}
	for !now.Before(d.nextTick) {
		d.nextTick = d.nextTick.Add(time.Second)
	}
	if bytes < 0 {
		bytes = d.C.Bytes.Load()
	}
	line := bytesLine(bytes, now.Sub(d.Start), true)
	buf := make([]byte, 0, 1+len(line)+d.progressLen)
	buf = append(buf, '\r')
	buf = append(buf, line...)
	for i := len(line); i < d.progressLen; i++ {
		buf = append(buf, ' ')
	}
	d.progressLen = len(line)
	d.w.Write(buf)
}

// endProgress returns the newline that ends the status=progress line on
// screen, if there is one, so that what follows starts on its own line;
// else nil. d.mu is held.
func (d *DD) endProgress() []byte {
	if d.progressLen == 0 {
		return nil
	}
	d.progressLen = 0
	return []byte{'\n'}
}

// Report prints dd's statistics: the records lines, a truncated-records
// line when there are any, and the bytes line unless the level says
// otherwise. It is what dd prints at the end and on SIGUSR1.
func (d *DD) Report(now time.Time) {
	if d.Level == LevelNone {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	buf := d.endProgress()
	c := &d.C
	buf = fmt.Appendf(buf, "%d+%d records in\n%d+%d records out\n",
		c.InFull.Load(), c.InPartial.Load(), c.OutFull.Load(), c.OutPartial.Load())
	if t := c.Truncated.Load(); t == 1 {
		buf = append(buf, "1 truncated record\n"...)
	} else if t > 1 {
		buf = fmt.Appendf(buf, "%d truncated records\n", t)
	}
	if d.Level != LevelNoxfer {
		buf = append(buf, bytesLine(c.Bytes.Load(), now.Sub(d.Start), false)...)
		buf = append(buf, '\n')
	}
	d.w.Write(buf)
}

// Note prints "prog: note: msg" as Diagnose does, unless the level is
// LevelNone: status=none (and -q) print only errors and warnings, as dd's
// status=none prints no informational messages.
func (d *DD) Note(msg string) {
	if d.Level == LevelNone {
		return
	}
	d.Diagnose("note: " + msg)
}

// Diagnose prints "prog: msg" on its own line, first ending a progress line
// that is on screen, as dd's diagnose does. Warnings and errors go through
// here so they never land in the middle of a progress line.
func (d *DD) Diagnose(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	buf := d.endProgress()
	buf = append(buf, d.Prog...)
	buf = append(buf, ": "...)
	buf = append(buf, msg...)
	buf = append(buf, '\n')
	d.w.Write(buf)
}
