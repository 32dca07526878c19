package send

import (
	"sync"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/changes"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
)

// This file reads the changed ranges of SNAP with O_DIRECT through a
// native AIO context, aioDepth reads in flight from one goroutine.
// Scattered changes are many 64 KiB reads, and what they cost is how many
// are queued at the disk at once: a goroutine per blocking pread got
// fewer than two on average, as each blocked read holds its thread and
// the Go scheduler hands the processor on slowly. The buffers come in
// order from one arena (ring) and go back in the same order, so memory
// stays at arenaSize however small the reads.

const (
	// aioDepth is how many reads of changed ranges are in flight.
	aioDepth = 64
	// arenaSize is the memory the reads in flight and those waiting to
	// be hashed share.
	arenaSize = (readers + 2) * readPiece
)

// A ring hands out pieces of one aligned arena in order and takes them
// back in the same order.
type ring struct {
	mu         sync.Mutex
	cond       *sync.Cond
	buf        []byte
	head, tail int64 // bytes handed out and taken back, wrap gaps included
	closed     bool
}

func newRing(size, align int) *ring {
	r := &ring{buf: blockdev.AlignedBuffer(size, align)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// get returns n bytes (n at most the arena's size, a multiple of the
// alignment) and the span they take, to give back with put; it waits
// for room, and returns nil once the ring is closed.
func (r *ring) get(n int) ([]byte, int64) {
	size := int64(len(r.buf))
	r.mu.Lock()
	defer r.mu.Unlock()
	pos := r.head % size
	span := int64(n)
	if pos+span > size {
		span += size - pos // the arena's end is skipped
		pos = 0
	}
	for !r.closed && r.head+span-r.tail > size {
		r.cond.Wait()
	}
	if r.closed {
		return nil, 0
	}
	r.head += span
	return r.buf[pos : pos+int64(n)], span
}

// put takes back the oldest span handed out.
func (r *ring) put(span int64) {
	r.mu.Lock()
	r.tail += span
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *ring) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// aioReads starts reading pieces of in (opened with O_DIRECT) in order
// through AIO and returns the queue of their results, in order; nil when
// AIO cannot be had (then the caller reads with preads). stop ends the
// reads early; after the queue is drained or stop, nothing is in flight.
func aioReads(in *ddcopy.Input, pieces []changes.Range) (queue chan chan piece, release func(piece), stop func()) {
	if !in.Direct {
		return nil, nil, nil
	}
	reads, err := blockdev.NewAIOReads(aioDepth)
	if err != nil {
		return nil, nil, nil
	}
	align := max(in.Align, 512)
	r := newRing(arenaSize, align)
	queue = make(chan chan piece, aioDepth)
	done := make(chan struct{})
	// A read that fails, comes back short or is not taken is read again
	// with a pread, which words the error.
	again := func(p piece, res chan piece) {
		n, err := readAt(in, p.buf, p.off, p.want)
		p.buf, p.err = p.buf[:n], err
		res <- p
	}
	go func() {
		defer close(queue)
		for _, pc := range pieces {
			want := int(pc.Len)
			buf, span := r.get((want + align - 1) / align * align)
			if buf == nil {
				return
			}
			p := piece{off: pc.Off, buf: buf, want: want, span: span}
			res := make(chan piece, 1)
			select {
			case queue <- res:
			case <-done:
				return
			}
			if !reads.Read(in.F, buf, pc.Off, func(n int64) {
				if n < int64(want) {
					go again(p, res)
					return
				}
				p.buf = p.buf[:want]
				res <- p
			}) {
				go again(p, res)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			r.close()
			reads.Close() // waits for or cancels what is in flight
		})
	}
	return queue, func(p piece) { r.put(p.span) }, stop
}
