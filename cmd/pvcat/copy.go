package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/pipeio"
)

// input is one FILE operand, or stdin for "-".
type input struct {
	name string
	skip bool // it could not be accessed: reported, left out
}

// accessError says FILE operands could not be opened (failed of total),
// or one was the output file (same). Each was reported when it failed; run
// returns it, already shown, for the exit status (code).
type accessError struct{ failed, same, total int }

func (e accessError) Error() string {
	return fmt.Sprintf("%d of %d files could not be accessed, %d was the output", e.failed, e.total, e.same)
}

// code returns pv's exit status for e, bits of a mask: 2 a FILE could not
// be opened, 4 a FILE was the output file; 10 (2|8) when no FILE could be
// opened at all.
func (e accessError) code() int {
	if e.failed == e.total {
		return cli.ExitNoFile
	}
	c := 0
	if e.failed > 0 {
		c |= cli.ExitFileAccess
	}
	if e.same > 0 {
		c |= cli.ExitSameFile
	}
	return c
}

// errSameFile says an input is the output file: copying it would feed the
// output back to itself (`pvcat log >> log`). As pv, pvcat stops there.
var errSameFile = errors.New("input file is output file")

// inputSizes returns the inputs for files (stdin alone when there are none)
// and the bytes they hold, or 0 when any size is unknown: regular files'
// sizes, block devices' (streamSize: what BLKGETSIZE64 reports), stdin's
// when it is one of those. A file that cannot be stat'ed is reported and skipped; a
// directory adds nothing (reading it fails, and is reported then, as pv).
func inputSizes(files []string, stdin io.Reader, report func(error)) ([]input, int64) {
	if len(files) == 0 {
		files = []string{"-"}
	}
	inputs := make([]input, len(files))
	total, known := int64(0), true
	for i, name := range files {
		inputs[i].name = name
		if name == "-" {
			f, ok := stdin.(*os.File)
			n, sized, err := int64(0), false, error(nil)
			if ok {
				n, sized, err = streamSize(f)
			}
			total, known = total+n, known && sized && err == nil
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			report(err)
			inputs[i].skip = true
			continue
		}
		switch m := fi.Mode(); {
		case m.IsRegular():
			total += fi.Size()
		case m.IsDir():
		case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
			f, err := os.Open(name)
			if err != nil {
				report(err)
				inputs[i].skip = true
				continue
			}
			n, _, err := streamSize(f)
			f.Close()
			total, known = total+n, known && err == nil
		default:
			known = false // a FIFO, a terminal: no size
		}
	}
	if !known {
		total = 0
	}
	return inputs, total
}

// transfer copies the inputs to the output, in order, and counts. It runs
// on its own goroutine; the display reads its counters.
type transfer struct {
	inputs []input
	stdin  io.Reader
	out    io.Writer // stdout, or io.Discard for -X
	cp     *pipeio.Copier
	outFI  os.FileInfo   // the output, when it is a regular file
	limit  int64         // -S: stop after limit bytes on the wire; 0 none
	wire   *atomic.Int64 // bytes moved, counted by cp.Progress
	// report hands the display an error that ends one input only; it
	// returns false when run has stopped listening.
	report func(error) bool

	// src, if set, looks for a framed stream at the start of the
	// input, and counts it if it is one.
	src     *source
	started bool // the first input was opened: too late to look
}

// run copies every input. It returns nil when all were copied, an error
// wrapping EPIPE when the reader downstream went away, a write error, or,
// once all inputs were tried, the first error an input ended with (already
// reported) or an accessError.
func (t *transfer) run() error {
	var failed, same int
	var first error
inputs:
	for _, in := range t.inputs {
		if t.limit > 0 && t.wire.Load() >= t.limit {
			break
		}
		if in.skip {
			failed++
			continue
		}
		err := t.copyInput(in)
		var oe openError
		switch {
		case err == nil:
		case errors.Is(err, syscall.EPIPE) || isWriteError(err):
			return err
		case errors.As(err, &oe):
			// As pv: say which, go on with the next.
			failed++
			if !t.report(oe.err) {
				break inputs
			}
		case errors.Is(err, errSameFile):
			same++
			t.report(err)
			break inputs
		default:
			// As pv: say what went wrong with this input, go on with
			// the next.
			if first == nil {
				first = reportedError{err}
			}
			if !t.report(err) {
				break inputs
			}
		}
	}
	if first != nil {
		return first
	}
	if failed > 0 || same > 0 {
		return reportedError{accessError{failed, same, len(t.inputs)}}
	}
	return nil
}

// openError is an input that could not be opened.
type openError struct{ err error }

func (e openError) Error() string { return e.err.Error() }
func (e openError) Unwrap() error { return e.err }

func (t *transfer) copyInput(in input) error {
	var src io.Reader = t.stdin
	if in.name != "-" {
		f, err := os.Open(in.name)
		if err != nil {
			return openError{err}
		}
		defer f.Close()
		if t.outFI != nil {
			if fi, err := f.Stat(); err == nil && os.SameFile(fi, t.outFI) {
				return fmt.Errorf("%s: %w", in.name, errSameFile)
			}
		}
		src = f
	}
	dst := t.out
	if !t.started {
		// Only the start of the whole stream can be a framed stream's.
		t.started = true
		head, err := []byte(nil), error(nil)
		if t.src != nil {
			head, err = peekMagic(src)
		}
		if t.src != nil && string(head) == frame.Magic {
			t.src.framed.Store(true)
			t.out = &observed{Writer: t.out, src: t.src}
			dst = t.out
		}
		if len(head) > 0 {
			// Written outside the Copier: a few bytes, let by -L.
			n, werr := dst.Write(head)
			if n > 0 && t.cp.Progress != nil {
				t.cp.Progress(n)
			}
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		var pe *os.PathError
		if err != nil && !errors.As(err, &pe) {
			err = fmt.Errorf("read %s: %w", in.name, err)
		}
		if err != nil {
			return err
		}
	}
	if t.limit > 0 {
		t.cp.Max = t.limit - t.wire.Load()
	}
	_, err := t.cp.Copy(dst, src)
	return err
}

// peekMagic reads from r until it has len(frame.Magic) bytes or the bytes
// read stop matching the magic, so that a stream that is not framed (a
// terminal, `tail -f`) goes on at once. err is io.EOF at the end of r.
func peekMagic(r io.Reader) ([]byte, error) {
	head := make([]byte, 0, len(frame.Magic))
	for len(head) < len(frame.Magic) {
		n, err := r.Read(head[len(head):cap(head)])
		head = head[:len(head)+n]
		if !bytes.HasPrefix([]byte(frame.Magic), head) {
			return head, err
		}
		if err != nil {
			return head, err
		}
	}
	return head, nil
}

// isWriteError reports whether err is a failed write to the output, after
// which the next input would fail the same way.
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "write"
}

// source counts a framed stream in source bytes: how far the Observer has
// followed it into the source, from the start offset, and, once it stopped
// (a damaged stream, bytes after END), the wire bytes since, so the count
// never goes back. Written by the copying goroutine, read by the display.
type source struct {
	given int64 // -s; -1 none: the header's size is used
	obs   frame.Observer
	wire  int64 // bytes observed
	start int64 // the header's start offset

	framed atomic.Bool  // the input starts with the magic: count is used
	count  atomic.Int64 // source bytes, for the display
	header atomic.Bool  // the header was read: size is set
	size   atomic.Int64 // the source size less the start; -1 unknown
}

func (s *source) observe(p []byte) {
	s.wire += int64(len(p))
	s.obs.Write(p)
	if h, ok := s.obs.Header(); ok && !s.header.Load() {
		size := h.SourceSize
		if s.given >= 0 {
			size = s.given
		}
		if size >= 0 {
			size = max(size-h.StartOffset, 0)
		}
		s.start = h.StartOffset
		s.size.Store(size)
		s.header.Store(true)
	}
	s.count.Store(s.obs.Pos() - s.start + s.wire - s.obs.Offset())
}

// observed is the output seen through a source: what is written is also
// observed.
type observed struct {
	io.Writer
	src *source
}

func (o *observed) Write(p []byte) (int, error) {
	n, err := o.Writer.Write(p)
	o.src.observe(p[:n])
	return n, err
}

// Name names the output in the Copier's errors, as the file would.
func (o *observed) Name() string {
	if f, ok := o.Writer.(interface{ Name() string }); ok {
		return f.Name()
	}
	return "output"
}
