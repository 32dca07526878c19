package receive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
	"golang.org/x/sys/unix"
)

// This file keeps, beside each verified copy, what the next delta and the
// next blkcat --sums of the target need (see state.Kept): the digest map,
// the 4 KiB block sums, and the copy record. A delta onto a target whose
// kept state is valid is verified from the map: only the leaves its
// records touch are rehashed, their untouched bytes read back from the
// target, instead of reading all of it.

// maxKeptSums is the largest source whose block sums blkwrite keeps: they
// are held in memory while it writes, 8 bytes per 4 KiB (2 GiB for 1 TiB).
const maxKeptSums = 1 << 40

// keeper computes a copy's kept state as the copy is written.
type keeper struct {
	dir  state.Dir
	of   string
	size int64
	alg  frame.DigestAlg

	// The block sums, one per state.KeptBlockSize block: from the
	// stream's records (apply's goroutine) and from the gaps the Reader
	// reads back (its verify goroutine), never the same block twice.
	// nil when not kept.
	sums    []uint64
	badSums atomic.Bool // a piece did not fall on block boundaries

	// A delta verified from the map: the map's tree, the leaf being
	// rebuilt from the stream's bytes, and the readers that read the
	// rest of each touched leaf from the target and hash it
	// (leafread.go).
	tree    *digest.Tree
	noAIO   bool     // BLKPIPE_AIO=0: read with preads
	rf      *os.File // the target, read with read-ahead off
	aio     *aioLeaves
	cur     *leafJob
	bufs    chan []byte
	jobs    chan *leafJob
	pending sync.WaitGroup // leaves handed on, not yet hashed
	failed  atomic.Bool
	mu      sync.Mutex
	err     error    // the first failed read
	cvs     []leafCV // the touched leaves' new chaining values
}

// newKeeper returns the keeper of a stream with header h onto of, or nil
// when nothing is kept (no named seekable target, or no known size).
func newKeeper(opt Options, h frame.Header, t *sink) *keeper {
	if opt.Ops.Of == "" || !t.seekable || h.SourceSize < 0 || opt.NoVerify {
		return nil
	}
	k := &keeper{dir: opt.State, of: opt.Ops.Of, size: h.SourceSize, alg: h.DigestAlg, noAIO: opt.NoAIO}
	if h.SourceSize <= maxKeptSums {
		k.sums = make([]uint64, sums.Blocks(h.SourceSize, state.KeptBlockSize))
	}
	return k
}

// useMap tries to verify a delta from the target's kept state, and says
// why not when it cannot: then the Reader reads the whole target back.
func (k *keeper) useMap(t *sink, h frame.Header, pre *Preloaded) error {
	if h.DigestAlg != frame.DigestBLAKE3 {
		return fmt.Errorf("a %v stream", h.DigestAlg)
	}
	s := pre.get(t.F)
	if s == nil {
		s = loadKept(k.dir, t.F, k.of)
	}
	pre.drop()
	if err := k.adopt(t, s); err != nil {
		return err
	}
	k.startLeaves()
	return nil
}

// adopt makes s (a kept map and its block sums, as loadKept or
// keptFrom checked them) what the delta is verified from, once checked
// against the stream's source size; the first failed step is the error.
func (k *keeper) adopt(t *sink, s *keptState) error {
	if s.keptErr != nil {
		return s.keptErr
	}
	if s.kept.Copy.Size != k.size {
		return fmt.Errorf("the map is of a %d-byte source, the delta's is %d bytes", s.kept.Copy.Size, k.size)
	}
	if s.sumsErr != nil {
		return s.sumsErr
	}
	if s.decErr != nil || s.sh.BlockSize != state.KeptBlockSize || s.sh.Size != k.size {
		return errors.New("the kept block sums are damaged")
	}
	if len(s.kept.Map.Leaves) < 2 {
		return errors.New("a target of one leaf") // read whole anyway
	}
	if s.treeErr != nil {
		return s.treeErr
	}
	rf, err := os.Open(t.F.Name())
	if err != nil {
		return err
	}
	// The leaves' untouched bytes are read in small scattered pieces:
	// read-ahead would read (and count) what is not needed.
	unix.Fadvise(int(rf.Fd()), 0, 0, unix.FADV_RANDOM)
	k.sums, k.tree, k.rf = s.ds, s.tree, rf
	return nil
}

// unadopt undoes adopt: the delta is verified by reading the target back.
func (k *keeper) unadopt() {
	if k.rf != nil {
		k.rf.Close()
	}
	k.tree, k.rf, k.sums = nil, nil, nil
	if k.size <= maxKeptSums {
		k.sums = make([]uint64, sums.Blocks(k.size, state.KeptBlockSize))
	}
}

// close releases the target's read descriptor. The leaf workers end in
// verify: after an interrupt apply may still be feeding them, and they are
// left to the process's exit.
func (k *keeper) close() {
	if k != nil && k.rf != nil {
		k.rf.Close()
	}
}

// data notes source bytes p at off, written by the stream or read back
// from a gap.
func (k *keeper) data(p []byte, off int64) error {
	if k == nil {
		return nil
	}
	k.sum(p, off)
	return k.feed(p, off, int64(len(p)))
}

// zeroBlockSum is the block sum of a whole zero state.KeptBlockSize block,
// computed once for every ZERO record.
var zeroBlockSum = sync.OnceValue(func() uint64 {
	return sums.Sum(make([]byte, state.KeptBlockSize))
})

// zero notes a ZERO record.
func (k *keeper) zero(off, n int64) error {
	if k == nil {
		return nil
	}
	if k.sums != nil && !k.badSums.Load() {
		bs := int64(state.KeptBlockSize)
		if off%bs != 0 || (off+n)%bs != 0 && off+n != k.size {
			k.badSums.Store(true)
		} else {
			full := zeroBlockSum()
			for j := off / bs; j*bs < off+n; j++ {
				if (j+1)*bs <= k.size {
					k.sums[j] = full
				} else {
					k.sums[j] = sums.Sum(make([]byte, k.size-j*bs))
				}
			}
		}
	}
	return k.feed(nil, off, n)
}

// sum sets the block sums of the blocks p covers; p must start on a block
// boundary and end on one or at the end of the source. It is called from
// two goroutines, for different blocks.
func (k *keeper) sum(p []byte, off int64) {
	if k.sums == nil || k.badSums.Load() {
		return
	}
	bs := int64(state.KeptBlockSize)
	end := off + int64(len(p))
	if off%bs != 0 || end%bs != 0 && end != k.size {
		k.badSums.Store(true)
		return
	}
	for j := off / bs; len(p) > 0; j++ {
		c := min(int64(len(p)), bs)
		k.sums[j] = sums.Sum(p[:c])
		p = p[c:]
	}
}

// feed rebuilds the leaves the stream's bytes at off touch (p nil: n
// zeros), in source order: it copies the stream's bytes into the leaf and
// notes the ranges it lacks, which the readers of leafread.go read from
// the target and hash, many at a time.
func (k *keeper) feed(p []byte, off, n int64) error {
	if k.tree == nil {
		return nil
	}
	for n > 0 {
		i := off / digest.LeafSize
		if k.cur == nil || i != k.cur.i {
			if err := k.flush(); err != nil {
				return err
			}
			k.cur = &leafJob{i: i, buf: <-k.bufs}
		}
		j := k.cur
		lo := off - i*digest.LeafSize
		if lo > j.pos {
			j.gaps = append(j.gaps, [2]int64{j.pos, lo})
		}
		c := min(n, k.leafLen(i)-lo)
		if p != nil {
			copy(j.buf[lo:lo+c], p[:c])
			p = p[c:]
		} else {
			clear(j.buf[lo : lo+c])
		}
		j.pos = lo + c
		off, n = off+c, n-c
	}
	return nil
}

// verify finishes a delta verified from the map: END's digest must be
// the root of the updated tree. On success it marks end verified.
func (k *keeper) verify(end *frame.Record) error {
	if k == nil || k.tree == nil {
		return nil
	}
	err := k.flush()
	k.stopLeaves()
	if err == nil {
		err = k.err
	}
	if err != nil {
		return err
	}
	for _, c := range k.cvs {
		k.tree.Set(c.i, c.cv)
	}
	root, err := k.tree.Root()
	if err != nil {
		return err
	}
	if root != end.Digest {
		return fmt.Errorf("frame: at source offset %d: %w: the target's digest map with the delta's blocks hashes to %x, END says %x (%v)",
			end.Offset, frame.ErrDigest, root, end.Digest, frame.DigestBLAKE3)
	}
	end.Verified = true
	return nil
}

// saving is the map and block sums of a verified copy being written
// (startSave), and the copy record that will vouch for them.
type saving struct {
	done chan struct{}
	c    state.Copy
	err  error
}

// startSave starts keeping the state of a verified copy: the map (leaves
// from the tree, or from fr, which hashed the whole source) and the block
// sums. They are written while the target is made durable: without the
// copy record, which save writes after, they are not trusted (and the
// record went before the target's first change). Nil when nothing is kept.
func (k *keeper) startSave(h frame.Header, fr *frame.Reader, end frame.Record) *saving {
	if k == nil || !end.Verified {
		return nil
	}
	s := &saving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.c, s.err = k.saveLeaves(h, fr, end)
	}()
	return s
}

func (k *keeper) saveLeaves(h frame.Header, fr *frame.Reader, end frame.Record) (state.Copy, error) {
	c := state.Copy{Target: k.of, Size: k.size, Alg: h.DigestAlg.String(), Digest: hex.EncodeToString(end.Digest[:]),
		StreamID: hex.EncodeToString(h.StreamID[:]), Time: time.Now()}
	if h.DigestAlg != frame.DigestBLAKE3 {
		return c, nil
	}
	leaves := fr.Leaves()
	if k.tree != nil {
		leaves = k.tree.Leaves()
	}
	if leaves == nil {
		return c, errors.New("no leaves")
	}
	m := digest.Map{Size: k.size, Root: end.Digest, Leaves: leaves}
	b, err := m.Marshal()
	if err != nil {
		return c, err
	}
	if err := k.dir.SaveMap(k.of, b); err != nil {
		return c, err
	}
	if k.sums != nil && !k.badSums.Load() {
		b, err := sums.Encode(state.KeptBlockSize, k.size, k.sums)
		if err != nil {
			return c, err
		}
		if c.Sums, err = k.dir.SaveSums(k.of, b); err != nil {
			return c, err
		}
	}
	return c, nil
}

// wait waits for the map and sums to be written; s may be nil.
func (s *saving) wait() {
	if s != nil {
		<-s.done
	}
}

// save keeps the copy record of a verified copy, once its map and sums
// are written and the target was made durable; s is from startSave.
// Failing to is worth a warning, not a failed copy.
func (k *keeper) save(t *sink, s *saving) error {
	if s == nil {
		return nil
	}
	s.wait()
	if s.err != nil {
		return s.err
	}
	c := s.c
	id, err := state.Identify(t.F)
	if err != nil {
		return err
	}
	c.SetID(id)
	return k.dir.SaveCopy(c)
}

// RemoveKept removes target's copy record, map and kept sums before
// blkwrite first writes to it. A state directory it may not enter is left
// (blkwrite, not run as root, keeps none there).
func RemoveKept(dir state.Dir, target string) error {
	if err := dir.RemoveCopy(target); err != nil && !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("remove the copy record of %s: %w", ddmsg.Quote(target), err)
	}
	return nil
}
