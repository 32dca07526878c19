package digest

import (
	"runtime"
	"sync"

	"lukechampine.com/blake3/guts"
)

// Hasher computes BLAKE3-256 of a source written to it in order, in any
// chunk sizes. It copies the bytes into pieces of 1 MiB and hashes each
// whole piece on one of its goroutines while the caller writes on, so the
// digest runs on all cores; the last piece is hashed by Sum.
//
// Memory is bounded: at most min(2×workers+2, maxPieces) pieces (6 MiB
// with 2 workers or more) are held, one being filled, one kept back until
// the next byte shows it is not the last, and the rest hashed or waiting;
// Write blocks when all are in use. With WithLeaves it also keeps 32
// bytes per leaf.
//
// A Hasher is not safe for concurrent use. Close (or Sum) releases its
// goroutines.
type Hasher struct {
	keep    bool
	workers int
	total   int64 // the source's size when known (WithSize), else -1

	buf     []byte    // piece being filled
	pending *PieceSum // the last piece added by AddPiece, kept back until more follows
	pieces  int64     // whole pieces handed to the goroutines
	size    int64

	started bool
	free    chan []byte
	jobs    chan pieceJob
	queue   chan chan pieceSum
	merged  chan struct{}
	wg      sync.WaitGroup

	// The merge goroutine's state, read after merged is closed.
	stack  stack
	leaves [][8]uint32

	closed bool
	root   [Size]byte
}

type pieceJob struct {
	b       []byte
	i       int64
	res     chan pieceSum
	release func() // of a lent piece (WriteLent); nil for the Hasher's own
}

type pieceSum struct {
	cv     [8]uint32
	leaves [pieceLeaves][8]uint32
}

// maxPieces caps the Hasher's own pieces whatever the number of workers:
// with many cores the pieces, not the cores, would set its memory, and
// maxPieces-2 pieces hashing at once outrun any stream it is written.
const maxPieces = 6

// Option configures a Hasher.
type Option func(*Hasher)

// WithWorkers sets the number of hashing goroutines, n ≥ 1 (values below
// are taken as 1). Default GOMAXPROCS. The digest does not depend on it.
func WithWorkers(n int) Option { return func(h *Hasher) { h.workers = max(1, n) } }

// WithLeaves makes the Hasher keep every leaf's chaining value, returned
// by Leaves after Sum: 32 bytes per 64 KiB of source.
func WithLeaves() Option { return func(h *Hasher) { h.keep = true } }

// WithSize tells the Hasher the source is n bytes, so that WriteLent
// knows which of its pieces is not the source's last and can hash it
// where it is. Sum is then the source's digest only if exactly n bytes
// were written (a caller that declared a size checks it anyway).
func WithSize(n int64) Option { return func(h *Hasher) { h.total = n } }

// New returns a Hasher.
func New(opts ...Option) *Hasher {
	h := &Hasher{workers: runtime.GOMAXPROCS(0), total: -1}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *Hasher) start() {
	h.started = true
	n := min(2*h.workers+2, maxPieces)
	h.free = make(chan []byte, n)
	for range n {
		h.free <- nil // allocated on first use
	}
	h.jobs = make(chan pieceJob)
	h.queue = make(chan chan pieceSum, h.workers)
	h.merged = make(chan struct{})
	for range h.workers {
		h.wg.Add(1)
		go h.work()
	}
	go h.merge()
}

func (h *Hasher) work() {
	defer h.wg.Done()
	for j := range h.jobs {
		var s pieceSum
		s.cv = hashPiece(j.b, j.i, s.leaves[:])
		if j.release != nil {
			j.release()
		} else {
			h.free <- j.b[:0]
		}
		j.res <- s
	}
}

// merge pushes the pieces' chaining values onto the stack in order.
func (h *Hasher) merge() {
	defer close(h.merged)
	for res := range h.queue {
		s := <-res
		h.stack.push(s.cv, pieceHeight)
		if h.keep {
			h.leaves = append(h.leaves, s.leaves[:]...)
		}
	}
}

// Write adds p to the source. It never fails; it blocks while all piece
// buffers are in use. It must not be called after Sum or Close.
func (h *Hasher) Write(p []byte) (int, error) {
	if h.closed {
		panic("digest: Write after Sum or Close")
	}
	if len(p) > 0 {
		h.flushPending()
	}
	n := len(p)
	h.size += int64(n)
	for len(p) > 0 {
		if len(h.buf) == pieceSize {
			// More bytes follow, so this piece is not the last.
			h.dispatch()
		}
		if h.buf == nil {
			if !h.started {
				h.start()
			}
			h.buf = <-h.free
			if h.buf == nil {
				h.buf = make([]byte, 0, pieceSize)
			}
		}
		c := copy(h.buf[len(h.buf):pieceSize], p)
		h.buf, p = h.buf[:len(h.buf)+c], p[c:]
	}
	return n, nil
}

// WriteLent is Write for bytes the caller lends: the whole pieces of p
// that start at a multiple of 1 MiB of the source and are followed by more
// of p (or, under WithSize, by more of the source) are hashed where they
// are, not copied. For each it calls hold before it hands it to a
// goroutine and release, once, from that goroutine, when it is hashed;
// the caller must not change the piece in between. No piece is kept past
// that: the rest of p (which may end the source) is copied as Write
// copies it.
func (h *Hasher) WriteLent(p []byte, hold, release func()) (int, error) {
	if h.closed {
		panic("digest: Write after Sum or Close")
	}
	if len(p) > 0 {
		h.flushPending()
	}
	n := len(p)
	for h.size%pieceSize == 0 && (len(p) > pieceSize || len(p) == pieceSize && h.size+pieceSize < h.total) {
		if len(h.buf) == pieceSize {
			h.dispatch() // more bytes follow it
		}
		if !h.started {
			h.start()
		}
		if h.buf != nil {
			h.free <- h.buf // an empty buffer of its own, not needed now
			h.buf = nil
		}
		hold()
		h.send(p[:pieceSize:pieceSize], release)
		h.size += pieceSize
		p = p[pieceSize:]
	}
	if len(p) > 0 {
		h.Write(p)
	}
	return n, nil
}

// dispatch hands the filled piece to the goroutines.
func (h *Hasher) dispatch() {
	h.send(h.buf, nil)
	h.buf = nil
}

// send hands the next piece b to the goroutines, in order; release is
// b's for a lent piece, nil for one of the Hasher's buffers.
func (h *Hasher) send(b []byte, release func()) {
	res := make(chan pieceSum, 1)
	h.queue <- res
	h.jobs <- pieceJob{b: b, i: h.pieces, res: res, release: release}
	h.pieces++
}

// stop ends the goroutines after they have hashed what they were given.
func (h *Hasher) stop() {
	if h.started {
		close(h.jobs)
		close(h.queue)
		h.wg.Wait()
		<-h.merged
	}
	h.closed = true
}

// Sum returns the BLAKE3-256 digest of everything written, as b3sum
// prints it, and releases the goroutines. Later calls return the same
// value; Write may not follow.
func (h *Hasher) Sum() [Size]byte {
	if h.closed {
		return h.root
	}
	h.stop()
	if h.pending != nil {
		h.sumPending()
		return h.root
	}
	// The last piece: its whole leaves but the last, then the last leaf.
	n := NumLeaves(int64(len(h.buf)))
	var cvs [pieceLeaves][8]uint32
	first := h.pieces * pieceLeaves
	lastOff := (n - 1) * LeafSize
	hashPiece(h.buf[:lastOff], h.pieces, cvs[:n-1])
	for _, cv := range cvs[:n-1] {
		h.stack.push(cv, 0)
	}
	last := leafNode(h.buf[lastOff:], first+n-1)
	h.root = h.stack.root(last)
	if h.keep {
		h.leaves = append(h.leaves, cvs[:n-1]...)
		h.leaves = append(h.leaves, guts.ChainingValue(last))
	}
	h.buf = nil
	return h.root
}

// Size returns the number of bytes written.
func (h *Hasher) Size() int64 { return h.size }

// Leaves returns the leaf chaining values, NumLeaves(Size()) of them,
// after Sum of a Hasher made WithLeaves (nil otherwise).
func (h *Hasher) Leaves() []CV {
	if !h.keep || !h.closed {
		return nil
	}
	out := make([]CV, len(h.leaves))
	for i, w := range h.leaves {
		out[i] = toCV(w)
	}
	return out
}

// Close releases the goroutines without computing the digest (after an
// error). It may follow Sum.
func (h *Hasher) Close() {
	if !h.closed {
		h.stop()
		h.buf, h.pending = nil, nil
	}
}
