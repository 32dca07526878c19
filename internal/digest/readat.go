package digest

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"lukechampine.com/blake3/guts"
)

// ReadConfig says how SumAt reads its source. The zero ReadConfig reads
// 4 MiB at a time on 2×GOMAXPROCS goroutines (at most 5) into buffers
// from make.
type ReadConfig struct {
	// Workers is the number of goroutines that each read a chunk and
	// hash it; more than GOMAXPROCS keeps reads in flight while the
	// others hash. Default 2×GOMAXPROCS, but no more than keep
	// readBudget bytes of chunks.
	Workers int
	// Chunk is the bytes of one read, rounded up to a multiple of 1 MiB
	// (a piece). Default 4 MiB.
	Chunk int
	// Alloc returns a buffer of n bytes; with O_DIRECT it must be
	// aligned (blockdev.AlignedBuffer). Default make.
	Alloc func(n int) []byte
	// Align rounds up the length of the read of the source's last piece,
	// for O_DIRECT, which refuses unaligned lengths; every other read is
	// a multiple of 1 MiB at a multiple of 1 MiB. Default 4096.
	Align int
	// Leaves makes SumAt return every leaf's chaining value too.
	Leaves bool
}

// readBudget bounds the chunks SumAt holds by default (Workers+1 of
// them), so that many cores do not make it take more memory than a few
// keep busy.
const readBudget = 24 << 20

// SumAt returns the BLAKE3-256 digest of the first size bytes of r, as
// b3sum prints it, and with cfg.Leaves their leaves' chaining values. Its
// goroutines each read a chunk with one ReadAt into a buffer of their own
// and hash it there, so reads overlap hashing on all cores with no copy;
// chunks are merged in source order, so memory stays at Workers+1 chunks
// whatever the size (plus 32 bytes per leaf with Leaves).
//
// A read that fails, or ends before size bytes, stops SumAt with an error
// naming the offset; io.EOF within the last piece's alignment padding is
// not an error.
func SumAt(r io.ReaderAt, size int64, cfg ReadConfig) ([Size]byte, []CV, error) {
	if size < 0 {
		return [Size]byte{}, nil, fmt.Errorf("digest: negative size %d", size)
	}
	chunk := cfg.Chunk
	if chunk <= 0 {
		chunk = 4 << 20
	}
	chunk = (chunk + pieceSize - 1) / pieceSize * pieceSize
	workers := cfg.Workers
	if workers <= 0 {
		workers = max(1, min(2*runtime.GOMAXPROCS(0), readBudget/chunk-1))
	}
	alloc := cfg.Alloc
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	align := int64(cfg.Align)
	if align <= 0 {
		align = 4096
	}

	n := NumLeaves(size)
	lastOff := (n - 1) * LeafSize
	pieces := lastOff / pieceSize // whole pieces before the last leaf
	per := int64(chunk / pieceSize)
	chunks := (pieces + per - 1) / per

	type result struct {
		cvs    [][8]uint32 // one per piece
		leaves [][8]uint32 // with cfg.Leaves
		err    error
	}
	type job struct {
		c   int64
		buf []byte
		res chan result
	}
	// A worker gives its buffer back before it hands on its result, so
	// workers+1 buffers keep every worker busy.
	free := make(chan []byte, workers+1)
	for range cap(free) {
		free <- nil // allocated on first use
	}
	jobs := make(chan job)
	queue := make(chan chan result, 2*workers)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(int64(workers), chunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				first := j.c * per
				np := min(per, pieces-first)
				b := j.buf[:np*pieceSize]
				var res result
				if k, err := r.ReadAt(b, first*pieceSize); k < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					res.err = fmt.Errorf("read %d bytes at offset %d: %w", len(b), first*pieceSize+int64(k), err)
					failed.Store(true)
				} else {
					res.cvs = make([][8]uint32, np)
					if cfg.Leaves {
						res.leaves = make([][8]uint32, np*pieceLeaves)
					}
					var tmp [pieceLeaves][8]uint32
					for p := range np {
						lv := tmp[:]
						if cfg.Leaves {
							lv = res.leaves[p*pieceLeaves : (p+1)*pieceLeaves]
						}
						res.cvs[p] = hashPiece(b[p*pieceSize:(p+1)*pieceSize], first+p, lv)
					}
				}
				free <- j.buf
				j.res <- res
			}
		}()
	}
	var st stack
	var leaves [][8]uint32
	var mergeErr error
	merged := make(chan struct{})
	go func() {
		defer close(merged)
		for res := range queue {
			s := <-res
			if mergeErr != nil {
				continue
			}
			if s.err != nil {
				mergeErr = s.err
				continue
			}
			for _, cv := range s.cvs {
				st.push(cv, pieceHeight)
			}
			leaves = append(leaves, s.leaves...)
		}
	}()
	for c := int64(0); c < chunks && !failed.Load(); c++ {
		buf := <-free
		if buf == nil {
			buf = alloc(chunk)
		}
		res := make(chan result, 1)
		queue <- res
		jobs <- job{c: c, buf: buf, res: res}
	}
	close(jobs)
	close(queue)
	wg.Wait()
	<-merged
	if mergeErr != nil {
		return [Size]byte{}, nil, mergeErr
	}

	// The tail: the leaves after the whole pieces, at most one piece,
	// read with its length rounded up to the alignment, then the last
	// leaf, hashed as the root's child here.
	tailOff := pieces * pieceSize
	tail := size - tailOff
	var buf []byte
	if tail > 0 {
		buf = spare(free)
		if buf == nil {
			buf = alloc(int(min(int64(chunk), (tail+align-1)/align*align)))
		}
		want := min(int64(len(buf)), (tail+align-1)/align*align)
		k, err := r.ReadAt(buf[:want], tailOff)
		if int64(k) < tail {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return [Size]byte{}, nil, fmt.Errorf("read %d bytes at offset %d: %w", tail, tailOff+int64(k), err)
		}
		buf = buf[:tail]
	}
	m := NumLeaves(tail) // leaves in the tail, the last included
	var cvs [pieceLeaves][8]uint32
	hashPiece(buf[:(m-1)*LeafSize], pieces, cvs[:m-1])
	for _, cv := range cvs[:m-1] {
		st.push(cv, 0)
	}
	last := leafNode(buf[(m-1)*LeafSize:], n-1)
	root := st.root(last)
	if !cfg.Leaves {
		return root, nil, nil
	}
	leaves = append(leaves, cvs[:m-1]...)
	leaves = append(leaves, guts.ChainingValue(last))
	out := make([]CV, len(leaves))
	for i, w := range leaves {
		out[i] = toCV(w)
	}
	return root, out, nil
}

// spare returns a buffer SumAt's workers allocated, from free, or nil
// when they allocated none. All are back in free: each worker gives its
// buffer back before it hands on its result, and SumAt waits for the
// workers, so taking from free never blocks.
func spare(free chan []byte) []byte {
	for {
		select {
		case b := <-free:
			if b != nil {
				return b
			}
		default:
			return nil
		}
	}
}
