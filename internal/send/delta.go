package send

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// newDeltaSender reads the sums header (refusing another block size or a
// target smaller than SRC before anything is sent) and returns a frame
// writer that sends only the blocks whose digest differs.
func newDeltaSender(ctx context.Context, opt Options, c *ddcopy.Copier, stdin *os.File) (*Sender, error) {
	size, err := knownSize(c, "--against")
	if err != nil {
		return nil, err
	}
	name := opt.Against
	var f *os.File
	if name == "-" {
		name, f = "standard input", stdin
	} else if f, err = os.Open(name); err != nil {
		return nil, &ddmsg.Error{Msg: "failed to open block sums " + ddmsg.Quote(name), Err: err}
	}
	var sr *sums.Reader
	in := &readSeen{r: f}
	err = ddtool.Interruptible(ctx, func() (err error) {
		sr, err = sums.NewReader(in) // from a stalled ssh, perhaps
		return err
	})
	if err == ddtool.ErrInterrupted {
		return nil, err
	}
	if errors.Is(err, sums.ErrBadMagic) && !in.seen {
		// `ssh backup blkcat --sums DEV | blkcat --against -` whose
		// remote side failed (its reason is on stderr above): the sums
		// are missing, not of another kind.
		return nil, fmt.Errorf("block sums %s are empty (did blkcat --sums on the other side fail?); nothing was sent", ddmsg.Quote(name))
	}
	if errors.Is(err, sums.ErrVersion) {
		// `ssh backup blkcat --sums DEV | blkcat --against -`: the
		// backup host runs another build.
		return nil, fmt.Errorf("block sums %s: %w: the blkcat --sums that wrote them and this blkcat are different blkpipe versions (see their --version); install the same version on both hosts", ddmsg.Quote(name), err)
	}
	if err != nil {
		return nil, fmt.Errorf("block sums %s: %w", ddmsg.Quote(name), err)
	}
	h := sr.Header()
	if h.Size < size {
		return nil, fmt.Errorf("source is larger than the target: %s is %d bytes, the block sums %s are of a %d-byte target; nothing was sent", ddmsg.Quote(c.In.Name), size, ddmsg.Quote(name), h.Size)
	}
	if h.Size > size {
		c.R.Note(fmt.Sprintf("the target is %d bytes, larger than %s (%d bytes); its last %d bytes are left as they are", h.Size, ddmsg.Quote(c.In.Name), size, h.Size-size))
	}
	d := &deltaFilter{name: name, size: size, batches: make(chan []uint64, 4), out: &failWriter{w: opt.output(c)}}
	go d.prefetch(sr)
	if size == 0 {
		d.drain()
		if d.err != nil {
			return nil, d.err
		}
	}
	fw, err := frame.NewWriter(d.out, append(opt.writerOptions(), frame.WithSourceSize(size),
		frame.WithBlockSize(h.BlockSize), frame.WithFilter(d.keep))...)
	if err != nil {
		return nil, ddtool.Usage(err.Error())
	}
	closeFw := closeFrame(fw, c)
	return &Sender{Sink: fw, Finish: func(err error) error {
		err = closeFw(err)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.err != nil {
			return d.err // the reason the stream was cut short
		}
		return err
	}}, nil
}

// deltaFilter is the frame writer's filter for blkcat --against: it pairs
// each block with the next digest of the sums stream, read ahead on its own
// goroutine so the network never waits for the disk or the other way round.
// The read-ahead is bounded (batches of 4096 digests, 4 queued) because it
// is also how far the --sums pass runs ahead of blkwrite, which finds those
// blocks in the page cache and drops them: a short lead keeps that window
// small, and the pages it frees are reused at once.
type deltaFilter struct {
	name    string
	size    int64
	batches chan []uint64
	final   error // the reader's last error (io.EOF when the trailer checked out)
	cur     []uint64
	out     *failWriter

	mu  sync.Mutex
	err error
}

func (d *deltaFilter) prefetch(sr *sums.Reader) {
	defer close(d.batches)
	for {
		batch := make([]uint64, 0, 4096)
		for len(batch) < cap(batch) {
			v, err := sr.Next()
			if err != nil {
				d.final = err // published by close(d.batches)
				d.batches <- batch
				return
			}
			batch = append(batch, v)
		}
		d.batches <- batch
	}
}

// next returns the next digest.
func (d *deltaFilter) next() (uint64, error) {
	for len(d.cur) == 0 {
		b, ok := <-d.batches
		if !ok {
			if d.final == io.EOF {
				return 0, fmt.Errorf("block sums %s: %w: fewer digests than the source has blocks", ddmsg.Quote(d.name), sums.ErrTruncated)
			}
			return 0, fmt.Errorf("block sums %s: %w", ddmsg.Quote(d.name), d.final)
		}
		d.cur = b
	}
	v := d.cur[0]
	d.cur = d.cur[1:]
	return v, nil
}

// drain reads the digests past the source's end (a larger target) and the
// trailer, which proves the digests used were the target's, in order.
func (d *deltaFilter) drain() {
	d.cur = nil
	for range d.batches {
	}
	if d.final != io.EOF {
		d.fail(fmt.Errorf("block sums %s: %w", ddmsg.Quote(d.name), d.final))
	}
}

// fail records err and cuts the output, so the stream never gets its END
// and blkwrite cannot take it for complete.
func (d *deltaFilter) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.out.fail(err)
}

// keep is the frame.WithFilter callback: send the block unless its digest
// equals the target's.
func (d *deltaFilter) keep(off int64, block []byte) bool {
	v, err := d.next()
	if err != nil {
		d.fail(err)
		return true
	}
	last := off+int64(len(block)) == d.size
	if last {
		d.drain()
	}
	return sums.Sum(block) != v
}

// failWriter passes writes through until fail is called.
type failWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (f *failWriter) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *failWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

// readSeen is r, remembering whether a read ever returned a byte.
type readSeen struct {
	r    io.Reader
	seen bool
}

func (s *readSeen) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.seen = true
	}
	return n, err
}
