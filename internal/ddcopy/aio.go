package ddcopy

import (
	"sync"

	"github.com/blkpipe/blkpipe/internal/blockdev"
)

// aioReader keeps readParallel's O_DIRECT chunk reads in flight with
// Linux native AIO. One goroutine submits, one collects, and no thread
// blocks per read, which saves the thread wake-ups a goroutine per pread
// costs (dear in a VM; scripts/bench.sh section aio compares the two).
// A read that does not come back whole (an error, a short read at
// an end the size did not foresee) is done again by preadChunk, which
// handles errors record by record as dd does. BLKPIPE_AIO=0 turns it off.
type aioReader struct {
	c       *Copier
	a       *blockdev.AIO
	mu      sync.Mutex
	pending map[uint64]aioRead
	tag     uint64
	stopped chan struct{}
}

type aioRead struct {
	ch     *chunk
	at     int64
	want   int
	finish func()
}

// startAIO returns an aioReader for c's input, or nil when the input is
// not read with O_DIRECT or the kernel offers no AIO context.
func (c *Copier) startAIO() *aioReader {
	if !c.In.Direct || c.NoAIO {
		return nil
	}
	a, err := blockdev.NewAIO(c.Readers)
	if err != nil {
		return nil
	}
	r := &aioReader{c: c, a: a, pending: make(map[uint64]aioRead), stopped: make(chan struct{})}
	go r.collect()
	return r
}

// read submits a read of want bytes at at into ch and reports whether it
// did; finish runs once ch is filled. Reads that O_DIRECT cannot do
// (unaligned) or the kernel does not take are left to the caller.
func (r *aioReader) read(ch *chunk, at int64, want int, finish func()) bool {
	if r == nil || at%int64(r.c.In.Align) != 0 || want%r.c.In.Align != 0 {
		return false
	}
	r.mu.Lock()
	r.tag++
	tag := r.tag
	r.pending[tag] = aioRead{ch: ch, at: at, want: want, finish: finish}
	r.mu.Unlock()
	if err := r.a.Pread(r.c.In.F, ch.buf[:want], at, tag); err != nil {
		r.mu.Lock()
		delete(r.pending, tag)
		r.mu.Unlock()
		return false
	}
	return true
}

// collect finishes reads as the kernel completes them, until stop.
func (r *aioReader) collect() {
	defer close(r.stopped)
	c := r.c
	ev := make([]blockdev.AIOEvent, 16)
	for {
		n, err := r.a.Wait(ev)
		if err != nil {
			return
		}
		for _, e := range ev[:n] {
			r.mu.Lock()
			q := r.pending[e.Tag]
			delete(r.pending, e.Tag)
			r.mu.Unlock()
			if e.Res != int64(q.want) {
				c.preadAsync(q.ch, q.at, q.want, q.finish)
				continue
			}
			if c.In.Nocache {
				blockdev.DropCache(c.In.F, q.at, int64(q.want))
			}
			c.addRecords(q.ch, 0, q.want)
			q.finish()
		}
	}
}

// stop destroys the context; every submitted read must have finished.
func (r *aioReader) stop() {
	if r == nil {
		return
	}
	r.a.Close()
	<-r.stopped
}
