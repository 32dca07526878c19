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
// longer. A delta's stream is small (the changed blocks), so holding a
// good part of it costs little. Until start, reads pass straight through (a full copy's
// stream is read without the extra copy).
type aheadReader struct {
	r io.Reader

	mu      sync.Mutex
	cond    sync.Cond
	want    bool     // start was called
	on      bool     // the filler runs: reads come from chunks
	reading bool     // a pass-through read is under way
	closed  bool     // close was called: the filler stops
	chunks  [][]byte // read ahead, in order; chunks[0][off:] comes next
	off     int
	free    [][]byte // chunks handed on, for the filler to reuse
	err     error    // the filler's read error, after the chunks
}

// The filler reads into aheadChunks chunks of aheadRead bytes at most:
// 16 MiB, at 1 % of the blocks changed the delta of 1.6 GB of source.
const (
	aheadRead   = 256 << 10
	aheadChunks = 64
)

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
	for len(a.chunks) == 0 && a.err == nil {
		a.cond.Wait()
	}
	if len(a.chunks) == 0 {
		return 0, a.err
	}
	n := copy(p, a.chunks[0][a.off:])
	if a.off += n; a.off == len(a.chunks[0]) {
		a.free = append(a.free, a.chunks[0][:cap(a.chunks[0])])
		a.chunks[0] = nil
		a.chunks, a.off = a.chunks[1:], 0
		a.cond.Broadcast() // room for the filler
	}
	return n, nil
}

// fill reads the stream into chunks until an error or close, waiting
// while aheadChunks of them wait.
func (a *aheadReader) fill() {
	for {
		a.mu.Lock()
		for len(a.chunks) >= aheadChunks && !a.closed {
			a.cond.Wait()
		}
		if a.closed {
			a.err = io.ErrClosedPipe
			a.cond.Broadcast()
			a.mu.Unlock()
			return
		}
		var c []byte
		if k := len(a.free); k > 0 {
			c, a.free = a.free[k-1], a.free[:k-1]
		} else {
			c = make([]byte, aheadRead)
		}
		a.mu.Unlock()

		n, err := a.r.Read(c)

		a.mu.Lock()
		if n > 0 {
			a.chunks = append(a.chunks, c[:n])
		} else {
			a.free = append(a.free, c)
		}
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
