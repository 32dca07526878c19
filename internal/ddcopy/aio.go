package ddcopy

import (
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
	c     *Copier
	reads *blockdev.AIOReads
}

// startAIO returns an aioReader for c's input, or nil when the input is
// not read with O_DIRECT or the kernel offers no AIO context.
func (c *Copier) startAIO() *aioReader {
	if !c.In.Direct || c.NoAIO {
		return nil
	}
	reads, err := blockdev.NewAIOReads(c.Readers)
	if err != nil {
		return nil
	}
	return &aioReader{c: c, reads: reads}
}

// read submits a read of want bytes at at into ch and reports whether it
// did; finish runs once ch is filled. Reads that O_DIRECT cannot do
// (unaligned) or the kernel does not take are left to the caller.
func (r *aioReader) read(ch *chunk, at int64, want int, finish func()) bool {
	if r == nil || at%int64(r.c.In.Align) != 0 || want%r.c.In.Align != 0 {
		return false
	}
	c := r.c
	return r.reads.Read(c.In.F, ch.buf[:want], at, func(res int64) {
		if res != int64(want) {
			c.preadAsync(ch, at, want, finish)
			return
		}
		if c.In.Nocache {
			blockdev.DropCache(c.In.F, at, int64(want))
		}
		c.addRecords(ch, 0, want)
		finish()
	})
}

// stop destroys the context; every submitted read must have finished.
func (r *aioReader) stop() {
	if r == nil {
		return
	}
	r.reads.Close()
}
