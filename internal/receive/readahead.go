package receive

import (
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/state"
	"golang.org/x/sys/unix"
)

// readAhead serves the frame Reader's reads of the target's gaps (the
// blocks a delta or resume stream leaves out), which come in increasing
// offsets, from a second descriptor through the page cache, with the
// kernel asked to read the next readAheadWindow bytes ahead (so the reads
// overlap the hashing) and the pages behind dropped again (so a nightly
// verify leaves the cache as it was). The descriptor blkwrite writes with
// may have O_DIRECT, which needs aligned buffers; this one does not.
type readAhead struct {
	f       *os.File
	fadvise bool
	next    int64 // WILLNEED was given up to here
	dropped int64 // pages before this were dropped
	side    *state.SidecarCheck
	keep    *keeper // sums the target's blocks as they are read
}

const readAheadWindow = 32 << 20

// newReadAhead opens target's file again for reading; if it cannot, reads
// go to target itself.
func newReadAhead(target *os.File) *readAhead {
	f, err := os.Open(target.Name())
	if err != nil {
		return &readAhead{f: target}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().IsDir() {
		f.Close()
		return &readAhead{f: target}
	}
	return &readAhead{f: f, fadvise: true}
}

// ReadAt reads p at off, keeping the kernel's read-ahead in front of it.
func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	if r.fadvise {
		end := off + int64(len(p))
		if end+readAheadWindow/2 > r.next {
			from := max(r.next, end)
			unix.Fadvise(int(r.f.Fd()), from, end+readAheadWindow-from, unix.FADV_WILLNEED)
			r.next = end + readAheadWindow
		}
		if off-r.dropped > 2*readAheadWindow {
			blockdev.DropCache(r.f, r.dropped, off-readAheadWindow-r.dropped)
			r.dropped = off - readAheadWindow
		}
	}
	n, err := r.f.ReadAt(p, off)
	r.side.Check(p[:n], off)
	if r.keep != nil {
		r.keep.sum(p[:n], off)
	}
	return n, err
}

func (r *readAhead) close() {
	if r == nil {
		return
	}
	r.side.Close()
	if r.fadvise {
		r.f.Close()
	}
}
