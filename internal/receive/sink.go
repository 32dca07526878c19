package receive

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/target"
	"golang.org/x/sys/unix"
)

// sink is where a framed stream lands: a write target and what the stream
// knows of it.
type sink struct {
	*target.Target
	seekable  bool        // records are written at their offsets; else in order
	zeroRange bool        // ZERO runs are zeroed (BLKZEROOUT, a zeroed range) over their whole length
	fresh     bool        // a file truncated for a full stream: ZERO runs can stay holes
	trunc     bool        // fresh, but the truncation waits for the first change
	touched   atomic.Bool // the target was changed (truncated or written); read on an interrupt while apply runs
	zeroed    bool        // --assume-zeroed
	written   int64       // source bytes applied
	pos       int64       // for unseekable targets: bytes written so far
	zeros     []byte
	resume    *resumer // records progress for resume; nil when off
	// dropState is the target whose resume state a delta stream drops
	// when it first changes it: the state vouches for bytes the delta
	// replaces, and a delta records none of its own.
	dropState string
	state     state.Dir
	check     func(frame.Record) error // --allow's check of each record; nil otherwise
	// keep keeps the digest map and block sums (nil: none); keepOf is
	// the target whose kept state is removed before its first change.
	keep   *keeper
	keepOf string
	// keepAside: the kept state is set aside with the resume state
	// (state.SetKeptAside), not removed.
	keepAside bool
	behind    *writeBehind // a delta's records' early writeback; nil otherwise
}

// openSink opens of= (or standard output) for a stream with header h,
// after checking that the target can hold the source.
func openSink(opt Options, h frame.Header, full bool, stdout *os.File) (*sink, error) {
	ops := opt.Ops
	if ops.Of == "" {
		if !full {
			return nil, errNoReadBack
		}
		tg, err := target.Stdout(stdout, false, nil)
		if err != nil {
			return nil, err
		}
		t := &sink{Target: tg, zeroed: opt.AssumeZeroed, state: opt.State}
		t.seekable = t.Regular && !blockdev.IsAppend(stdout)
		return t, nil
	}
	tg, err := target.Open(target.Spec{
		Path:     ops.Of,
		Flags:    ddtool.OpenFlags(ops.OFlag),
		Create:   !ops.Conv.Nocreat && full, // a delta or resumed stream needs the target it continues
		Excl:     ops.Conv.Excl,
		ReadBack: true,
		Guard:    true,
		Lock:     true,
		CheckSize: func(size int64) error {
			if h.SourceSize >= 0 && size < h.SourceSize {
				return fmt.Errorf("target is smaller than the source: %s holds %d bytes, the stream's source is %d bytes; nothing was written", ddmsg.Quote(ops.Of), size, h.SourceSize)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	t := &sink{Target: tg, seekable: true, zeroed: opt.AssumeZeroed, state: opt.State}
	if !t.IsBlock && !t.Regular {
		// A character device or FIFO (of=/dev/null to check a kept
		// stream): written in order like standard output, and never
		// truncated, as dd truncates only regular files.
		if !full {
			t.F.Close()
			return nil, errNoReadBack
		}
		t.seekable = false
		return t, nil
	}
	if !t.IsBlock && full && !ops.Conv.Notrunc {
		// As dd truncates of=, but only once the first record has passed
		// its checks: a stream that fails before leaves the file as it was.
		t.fresh, t.trunc = true, true
	}
	t.setDirect(h)
	return t, nil
}

var errNoReadBack = errors.New("a delta or resumed stream needs a target it can read back (of= a device or file)")

// touch is called before the first change to the target: it truncates a
// file that a full stream replaces, and notes that the target changed.
func (t *sink) touch() error {
	if err := t.resume.dropStale(); err != nil {
		return err
	}
	if t.dropState != "" {
		if err := t.state.Remove(t.dropState); err != nil {
			return fmt.Errorf("remove stale resume state: %w", err)
		}
		t.dropState = ""
	}
	if t.keepOf != "" && t.keepAside {
		if err := t.state.SetKeptAside(t.keepOf); err != nil {
			return fmt.Errorf("set the copy record of %s aside: %w", ddmsg.Quote(t.keepOf), err)
		}
		t.keepOf = ""
	}
	if t.keepOf != "" {
		if err := RemoveKept(t.state, t.keepOf); err != nil {
			return err
		}
		t.keepOf = ""
	}
	if t.trunc {
		t.trunc = false
		if err := t.F.Truncate(0); err != nil {
			return &ddmsg.Error{Msg: "failed to truncate output file " + ddmsg.Quote(t.Name), Err: err}
		}
	}
	t.touched.Store(true)
	return nil
}

// setDirect turns O_DIRECT on where the target supports it (not tmpfs),
// as raw blkwrite opens its output: aligned records bypass the page cache,
// which costs a copy and page allocation per byte and leaves the whole
// copy cached. A delta stream is written through the page cache: its
// records are small and scattered, where synchronous O_DIRECT writes are
// slower; their writeback starts as they come (writeBehind), and
// fdatasync makes them durable.
func (t *sink) setDirect(h frame.Header) {
	if h.Delta() {
		t.behind = &writeBehind{f: t.F}
		return
	}
	if t.EnableDirect() {
		t.zeroRange = true
		t.Bounce(int(h.BlockSize))
	}
}

// apply writes the stream's records to the target until END.
func (t *sink) apply(fr *frame.Reader, rep *progress.DD, end *frame.Record) error {
	for {
		rec, err := fr.Next()
		if err != nil {
			return err
		}
		if t.check != nil {
			if err := t.check(rec); err != nil {
				return err
			}
		}
		switch rec.Type {
		case frame.Data:
			if err := t.writeAt(rec.Data, rec.Offset); err != nil {
				return err
			}
			t.behind.wrote(rec.Offset, rec.Length)
			if err := t.keep.data(rec.Data, rec.Offset); err != nil {
				return err
			}
		case frame.Zero:
			if err := t.zero(rec.Offset, rec.Length); err != nil {
				return err
			}
			if err := t.keep.zero(rec.Offset, rec.Length); err != nil {
				return err
			}
		case frame.End:
			*end = rec
			t.behind.start()
			return nil
		}
		t.written += rec.Length
		if err := t.resume.advance(t, rec); err != nil {
			return err
		}
		rep.C.InFull.Add(1)
		rep.C.OutFull.Add(1)
		rep.C.Bytes.Store(t.written)
		rep.Tick(time.Now())
	}
}

// writeAt writes p at source offset off: in order to an unseekable
// target, at its offset (with O_DIRECT when aligned) otherwise.
func (t *sink) writeAt(p []byte, off int64) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if !t.seekable {
		if off != t.pos {
			if err := t.zero(t.pos, off-t.pos); err != nil {
				return err
			}
		}
		_, err := t.Write(p)
		t.pos = off + int64(len(p))
		if err != nil {
			return t.WriteError(off, err, t.seekable)
		}
		return nil
	}
	if n, err := t.WriteAt(p, off); err != nil {
		// What landed of this record counts: "N bytes landed".
		t.written += int64(n)
		return t.WriteError(off+int64(n), err, t.seekable)
	}
	return nil
}

// zero makes [off, off+n) read as zeros: nothing in a fresh file (a hole),
// nothing with --assume-zeroed, BLKZEROOUT or a punched hole otherwise.
func (t *sink) zero(off, n int64) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if !t.seekable {
		if t.zeros == nil {
			t.zeros = make([]byte, 1<<20)
		}
		for n > 0 {
			k := min(n, int64(len(t.zeros)))
			if _, err := t.Write(t.zeros[:k]); err != nil {
				return t.WriteError(off, err, t.seekable)
			}
			off, n = off+k, n-k
			t.pos = off
		}
		return nil
	}
	if t.fresh || t.zeroed {
		return nil
	}
	if t.IsBlock || t.zeroRange {
		if err := t.Zero(off, n); err != nil {
			return t.WriteError(off, err, t.seekable)
		}
		return nil
	}
	// A file that held data: punch a hole, but never beyond its end (that
	// part reads as zeros once the size is set).
	if fi, err := t.F.Stat(); err == nil && off < fi.Size() {
		if err := t.Zero(off, min(n, fi.Size()-off)); err != nil {
			return t.WriteError(off, err, t.seekable)
		}
	}
	return nil
}

// finish sets a file's size to the source's, checks the digest verdict and
// makes the target durable.
func (t *sink) finish(end frame.Record) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if t.seekable && !t.IsBlock {
		if fi, err := t.F.Stat(); err == nil && fi.Mode().IsRegular() && (t.fresh && fi.Size() != end.Offset || fi.Size() < end.Offset) {
			if err := t.F.Truncate(end.Offset); err != nil {
				return &ddmsg.Error{Msg: "failed to set the size of " + ddmsg.Quote(t.Name), Err: err}
			}
		}
	}
	if t.seekable {
		if err := t.Fdatasync(); err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	return nil
}
