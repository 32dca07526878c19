package receive

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/digest"
)

// This file reads back the untouched bytes (the gaps) of the leaves a
// delta touches, for the keeper to rehash them. The gaps are small and
// scattered, so what counts is how many are in flight: with O_DIRECT and
// Linux native AIO one goroutine keeps up to leafDepth of them queued at
// the disk, where a goroutine per blocking pread got a few (each blocked
// read holds a thread, and the Go scheduler hands its processor on
// slowly). A target without O_DIRECT (tmpfs before 6.6), a kernel
// without AIO or BLKPIPE_AIO=0 gets leafWorkers goroutines with preads.
// Either way a gap is read only after the stream has passed its leaf:
// the bytes hashed are the target's, read after the delta's records
// before them were written.

const (
	// leafDepth is how many gap reads the AIO reader keeps in flight:
	// while the sender reads the source from the same disk, each waits
	// behind its large reads, and only more of them at once keep up.
	leafDepth = 256
	// leafBufs is how many touched leaves may be waiting for their
	// reads or their hash at once (the stream's apply waits for a free
	// one): 64 KiB each.
	leafBufs = 256
	// leafWorkers is how many touched leaves the pread fallback reads
	// back and hashes at once.
	leafWorkers = 32
)

// A leafJob is a touched leaf: its bytes from the stream, the ranges to
// read from the target, and then its new chaining value.
type leafJob struct {
	i    int64
	buf  []byte
	gaps [][2]int64
	pos  int64
	left atomic.Int32 // reads still in flight, plus one while they are submitted
}

type leafCV struct {
	i  int64
	cv digest.CV
}

func (k *keeper) leafLen(i int64) int64 { return min(digest.LeafSize, k.size-i*digest.LeafSize) }

// startLeaves starts the goroutines that read and hash touched leaves:
// the AIO reader if the target can be read so, else pread workers.
func (k *keeper) startLeaves() {
	align := 4096
	var r *aioLeaves
	if !k.noAIO {
		r = newAIOLeaves(k)
	}
	if r != nil {
		align = max(align, int(r.align))
	}
	k.bufs = make(chan []byte, leafBufs)
	for range leafBufs {
		k.bufs <- blockdev.AlignedBuffer(digest.LeafSize, align)
	}
	jobs := make(chan *leafJob, leafBufs)
	k.jobs = jobs
	if r != nil {
		k.aio = r
		r.start(jobs)
		return
	}
	for range leafWorkers {
		go func() {
			for j := range jobs {
				for _, g := range j.gaps {
					if !k.readGap(j, g) {
						break
					}
				}
				k.hashLeaf(j)
			}
		}()
	}
}

// readGap reads gap g of j from the target with a plain pread and
// reports whether it did; a failure fails the keeper.
func (k *keeper) readGap(j *leafJob, g [2]int64) bool {
	if k.failed.Load() {
		return false
	}
	at := j.i*digest.LeafSize + g[0]
	if _, err := k.rf.ReadAt(j.buf[g[0]:g[1]], at); err != nil {
		k.fail(&ddmsg.Error{Msg: fmt.Sprintf("error reading %s at offset %d to verify the delta", ddmsg.Quote(k.of), at), Err: err})
		return false
	}
	return true
}

// hashLeaf notes j's chaining value, unless a read failed, and frees j.
func (k *keeper) hashLeaf(j *leafJob) {
	if !k.failed.Load() {
		cv := digest.LeafCV(j.buf[:k.leafLen(j.i)], j.i)
		k.mu.Lock()
		k.cvs = append(k.cvs, leafCV{j.i, cv})
		k.mu.Unlock()
	}
	k.bufs <- j.buf
	k.pending.Done()
}

func (k *keeper) fail(err error) {
	k.mu.Lock()
	if k.err == nil {
		k.err = err
		k.failed.Store(true)
	}
	k.mu.Unlock()
}

// flush hands the current leaf, if any, to the readers, with the rest of
// it to read.
func (k *keeper) flush() error {
	if k.failed.Load() {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.err
	}
	if j := k.cur; j != nil {
		if l := k.leafLen(j.i); j.pos < l {
			j.gaps = append(j.gaps, [2]int64{j.pos, l})
		}
		k.pending.Add(1)
		k.jobs <- j
		k.cur = nil
	}
	return nil
}

// stopLeaves waits for every leaf handed on to be read and hashed, once
// apply is done, and stops the readers; it may be called more than once.
func (k *keeper) stopLeaves() {
	if k.jobs != nil {
		close(k.jobs)
		k.pending.Wait()
		k.aio.stop()
		k.jobs = nil
	}
}

// aioLeaves reads gaps with O_DIRECT through a native AIO context: one
// goroutine submits the reads of each leaf handed on, one collects them,
// and the leaves whose reads are all done are hashed on the other cores.
// A gap O_DIRECT cannot read into its place (not aligned), a read the
// kernel does not take and one that comes back short or failed are read
// again with a plain pread, which also words the error.
type aioLeaves struct {
	k      *keeper
	f      *os.File // the target with O_DIRECT
	align  int64
	reads  *blockdev.AIOReads
	hashes chan *leafJob
}

// newAIOLeaves opens k's target with O_DIRECT and sets up an AIO context,
// or returns nil when either cannot be had.
func newAIOLeaves(k *keeper) *aioLeaves {
	f, direct, err := blockdev.OpenDirect(k.rf.Name(), os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	if !direct {
		f.Close()
		return nil
	}
	reads, err := blockdev.NewAIOReads(leafDepth)
	if err != nil {
		f.Close()
		return nil
	}
	return &aioLeaves{k: k, f: f, align: int64(blockdev.DirectAlign(f)), reads: reads, hashes: make(chan *leafJob, leafBufs)}
}

func (r *aioLeaves) start(jobs <-chan *leafJob) {
	go r.submit(jobs)
	for range max(1, runtime.GOMAXPROCS(0)) {
		go func() {
			for j := range r.hashes {
				r.k.hashLeaf(j)
			}
		}()
	}
}

// submit submits the reads of each leaf handed on, in the stream's order.
func (r *aioLeaves) submit(jobs <-chan *leafJob) {
	for j := range jobs {
		j.left.Store(1)
		for _, g := range j.gaps {
			if r.k.failed.Load() {
				break
			}
			if !r.read(j, g) {
				r.k.readGap(j, g)
			}
		}
		r.done(j)
	}
}

// read submits the read of gap g of j, rounded up at the end of the
// source to O_DIRECT's alignment (the leaf's buffer has room), and
// reports whether it did.
func (r *aioLeaves) read(j *leafJob, g [2]int64) bool {
	n := g[1] - g[0]
	if g[1] == r.k.leafLen(j.i) {
		n = (n + r.align - 1) / r.align * r.align
	}
	if g[0]%r.align != 0 || n%r.align != 0 || g[0]+n > int64(len(j.buf)) {
		return false
	}
	j.left.Add(1)
	ok := r.reads.Read(r.f, j.buf[g[0]:g[0]+n], j.i*digest.LeafSize+g[0], func(res int64) {
		if res < g[1]-g[0] {
			r.k.readGap(j, g) // the error, worded; or a short read done again
		}
		r.done(j)
	})
	if !ok {
		j.left.Add(-1)
	}
	return ok
}

// done notes that one of j's reads finished (or that all were
// submitted), and hands j on to be hashed after the last.
func (r *aioLeaves) done(j *leafJob) {
	if j.left.Add(-1) == 0 {
		r.hashes <- j
	}
}

// stop ends the goroutines once every leaf handed on was hashed.
func (r *aioLeaves) stop() {
	if r == nil {
		return
	}
	r.reads.Close()
	close(r.hashes)
	r.f.Close()
}
