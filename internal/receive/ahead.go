package receive

import (
	"io"
	"sync"
)

// aheadReader is a delta stream's input, read on a goroutine of its own
// as it comes, up to aheadMax bytes ahead of the records applied. A delta
// is sent while its sender reads the whole source, and only a pipe's few
// bytes lie between them: when blkwrite stops reading (checking the
// target's kept state before its first write, a slow moment of the
// disk), the sender stops too, and reading the source takes that much
// longer. A delta's stream is small (the changed blocks), so holding it
// costs little. Until start, reads pass straight through (a full copy's
// stream is read without the extra copy).
type aheadReader struct {
	r io.Reader

	mu      sync.Mutex
	cond    sync.Cond
	want    bool   // start was called
	on      bool   // the filler runs: reads come from buf
	reading bool   // a pass-through read is under way
	closed  bool   // close was called: the filler stops
	buf     []byte // read ahead; buf[head:] is not yet handed on
	head    int
	err     error // the filler's read error, after buf
}

// aheadMax is how many bytes of the stream aheadReader holds at most:
// at 1 % of the blocks changed, the delta of 1.6 GB of source.
const aheadMax = 16 << 20

// aheadRead is the size of the filler's reads.
const aheadRead = 256 << 10

func newAheadReader(r io.Reader) *aheadReader {
	a := &aheadReader{r: r}
	a.cond.L = &a.mu
	return a
}

// start starts reading ahead, now or when the pass-through read under
// way returns; it does not wait.
func (a *aheadReader) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.want = true
	a.startLocked()
}

func (a *aheadReader) startLocked() {
	if a.want && !a.on && !a.reading && !a.closed {
		a.on = true
		go a.fill()
	}
}

// close stops the filler after its current read; later reads fail.
func (a *aheadReader) close() {
	a.mu.Lock()
	a.closed = true
	a.cond.Broadcast()
	a.mu.Unlock()
}

func (a *aheadReader) Read(p []byte) (int, error) {
	a.mu.Lock()
	if !a.on {
		a.reading = true
		a.mu.Unlock()
		n, err := a.r.Read(p)
		a.mu.Lock()
		a.reading = false
		a.startLocked()
		a.mu.Unlock()
		return n, err
	}
	defer a.mu.Unlock()
	for a.head == len(a.buf) && a.err == nil {
		a.cond.Wait()
	}
	if a.head == len(a.buf) {
		return 0, a.err
	}
	n := copy(p, a.buf[a.head:])
	a.head += n
	a.cond.Broadcast() // room for the filler
	return n, nil
}

// fill reads the stream into buf until an error, close, or while
// aheadMax bytes wait.
func (a *aheadReader) fill() {
	for {
		a.mu.Lock()
		for len(a.buf)-a.head >= aheadMax && !a.closed {
			a.cond.Wait()
		}
		if a.closed {
			a.err = io.ErrClosedPipe
			a.cond.Broadcast()
			a.mu.Unlock()
			return
		}
		// Room at the tail of buf: the bytes handed on are dropped
		// first, and it grows only when most of it is waiting.
		if a.head > 0 && a.head == len(a.buf) {
			a.buf, a.head = a.buf[:0], 0
		}
		if c := cap(a.buf); c-len(a.buf) < aheadRead {
			if waiting := len(a.buf) - a.head; c-waiting >= aheadRead && (waiting <= c/2 || c >= aheadMax+aheadRead) {
				a.buf = a.buf[:copy(a.buf, a.buf[a.head:])]
			} else {
				a.buf = append(make([]byte, 0, min(2*c+aheadRead, aheadMax+aheadRead)), a.buf[a.head:]...)
			}
			a.head = 0
		}
		tail := a.buf[len(a.buf):cap(a.buf)]
		a.mu.Unlock()

		// Only this goroutine changes buf's tail and its backing array:
		// Read copies from buf[head:len] under the lock.
		n, err := a.r.Read(tail)

		a.mu.Lock()
		a.buf = a.buf[:len(a.buf)+n]
		if err != nil {
			a.err = err
		}
		a.cond.Broadcast()
		a.mu.Unlock()
		if err != nil {
			return
		}
	}
}
