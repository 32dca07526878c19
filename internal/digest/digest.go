// Package digest computes BLAKE3-256, exactly the value b3sum prints, as a
// tree of fixed-size leaves hashed on all cores, and keeps the leaves'
// chaining values (the map) when asked, so that a receiver that rewrote a
// few leaves can recompute the root from those leaves and their parents.
//
// The tree is BLAKE3's own: a leaf is LeafSize bytes (64 BLAKE3 chunks,
// the last leaf may be short), and a node over n leaves has as left child
// the largest power of two of leaves less than n. Leaves are hashed in
// pieces of pieceSize bytes, one piece per goroutine.
package digest

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"lukechampine.com/blake3/guts"
)

// Sizes.
const (
	Size     = 32       // bytes of a digest and of a chaining value
	LeafSize = 64 << 10 // bytes of source per leaf (64 BLAKE3 chunks)

	leafChunks = LeafSize / guts.ChunkSize
	bufSize    = guts.MaxSIMD * guts.ChunkSize // what guts.CompressBuffer takes
	// pieceSize is what one goroutine hashes at a time: 16 leaves, a
	// perfect subtree, so that hand-offs cost little against the work.
	pieceSize   = 1 << 20
	pieceLeaves = pieceSize / LeafSize
	pieceHeight = 4 // log2(pieceLeaves)
)

// CV is a chaining value: the 32-byte output of a BLAKE3 node (here a
// leaf or a parent) without the root flag, little-endian words.
type CV [Size]byte

// ErrOneLeaf is returned for the root of a source of at most one leaf
// given only its chaining value: BLAKE3 hashes such a source's single
// leaf with the root flag, so the root needs the leaf's bytes.
var ErrOneLeaf = errors.New("digest: the root of a one-leaf source needs its bytes, not its chaining value")

// NumLeaves returns the number of leaves of a source of size bytes: one
// for an empty source (BLAKE3 hashes one empty chunk).
func NumLeaves(size int64) int64 {
	if size <= 0 {
		return 1
	}
	return (size + LeafSize - 1) / LeafSize
}

func toCV(w [8]uint32) CV {
	var c CV
	for i, x := range w {
		binary.LittleEndian.PutUint32(c[4*i:], x)
	}
	return c
}

func (c CV) words() [8]uint32 {
	var w [8]uint32
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(c[4*i:])
	}
	return w
}

// node returns the BLAKE3 node of b, a subtree of the source whose first
// chunk has index counter, without the root flag. b must be a whole node
// of BLAKE3's tree (a leaf, or aligned pieces of one).
func node(b []byte, counter uint64) guts.Node {
	if len(b) == bufSize {
		return guts.CompressBuffer((*[bufSize]byte)(b), bufSize, &guts.IV, counter, 0)
	}
	if len(b) < bufSize {
		// CompressBuffer reads a whole buffer whatever buflen says.
		var buf [bufSize]byte
		copy(buf[:], b)
		return guts.CompressBuffer(&buf, len(b), &guts.IV, counter, 0)
	}
	chunks := uint64(len(b)+guts.ChunkSize-1) / guts.ChunkSize
	left := uint64(1) << (bits.Len64(chunks-1) - 1) // largest power of two < chunks
	l := guts.ChainingValue(node(b[:left*guts.ChunkSize], counter))
	r := guts.ChainingValue(node(b[left*guts.ChunkSize:], counter+left))
	return guts.ParentNode(l, r, &guts.IV, 0)
}

// leafNode returns the node of leaf i, whose bytes are b.
func leafNode(b []byte, i int64) guts.Node { return node(b, uint64(i)*leafChunks) }

// LeafCV returns the chaining value of leaf i of a source, given the
// leaf's bytes: LeafSize of them, fewer for the last leaf.
func LeafCV(b []byte, i int64) CV { return toCV(guts.ChainingValue(leafNode(b, i))) }

func parent(l, r [8]uint32) guts.Node { return guts.ParentNode(l, r, &guts.IV, 0) }

func parentCV(l, r [8]uint32) [8]uint32 { return guts.ChainingValue(parent(l, r)) }

// rootOf returns the digest of n as the root node.
func rootOf(n guts.Node) [Size]byte {
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return [Size]byte(out[:Size])
}

// subtree is a perfect subtree of 1<<height leaves on a merge stack.
type subtree struct {
	cv     [8]uint32
	height int
}

// stack merges perfect subtrees pushed in source order, as BLAKE3's
// reference implementation does: only subtrees known not to end the
// source are pushed, so every merge is an inner node.
type stack []subtree

func (s *stack) push(cv [8]uint32, height int) {
	for len(*s) > 0 && (*s)[len(*s)-1].height == height {
		cv = parentCV((*s)[len(*s)-1].cv, cv)
		*s = (*s)[:len(*s)-1]
		height++
	}
	*s = append(*s, subtree{cv, height})
}

// root folds the stack onto last, the node of the source's last leaf.
func (s stack) root(last guts.Node) [Size]byte {
	for i := len(s) - 1; i >= 0; i-- {
		last = parent(s[i].cv, guts.ChainingValue(last))
	}
	return rootOf(last)
}

// perfectCV returns the chaining value of a perfect subtree of 2^k leaves.
func perfectCV(cvs [][8]uint32) [8]uint32 {
	for len(cvs) > 1 {
		for i := range len(cvs) / 2 {
			cvs[i] = parentCV(cvs[2*i], cvs[2*i+1])
		}
		cvs = cvs[:len(cvs)/2]
	}
	return cvs[0]
}

// hashPiece hashes the whole leaves of p, the source's piece number piece,
// into cvs (one per leaf), and returns the piece's own chaining value when
// it is a whole piece.
func hashPiece(p []byte, piece int64, cvs [][8]uint32) [8]uint32 {
	first := piece * pieceLeaves
	for j := range cvs {
		cvs[j] = guts.ChainingValue(leafNode(p[j*LeafSize:(j+1)*LeafSize], first+int64(j)))
	}
	if len(cvs) != pieceLeaves {
		return [8]uint32{}
	}
	var tmp [pieceLeaves][8]uint32
	copy(tmp[:], cvs)
	return perfectCV(tmp[:])
}

// Sum256 returns the BLAKE3-256 digest of b, as b3sum prints it, hashing
// its leaves on GOMAXPROCS goroutines.
func Sum256(b []byte) [Size]byte {
	root, _ := sumLeaves(b, false)
	return root
}

// Leaves returns the BLAKE3-256 digest of b and the chaining values of its
// NumLeaves(len(b)) leaves, hashed on GOMAXPROCS goroutines.
func Leaves(b []byte) ([Size]byte, []CV) { return sumLeaves(b, true) }

func sumLeaves(b []byte, keep bool) ([Size]byte, []CV) {
	n := NumLeaves(int64(len(b)))
	lastOff := (n - 1) * LeafSize
	last := leafNode(b[lastOff:], n-1)
	// Whole pieces before the last leaf go to the goroutines; the rest
	// (up to 15 leaves) is hashed here.
	pieces := lastOff / pieceSize
	cvs := make([][8]uint32, n)
	pcvs := make([][8]uint32, pieces)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(int64(runtime.GOMAXPROCS(0)), pieces) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < pieces; i = next.Add(1) - 1 {
				pcvs[i] = hashPiece(b[i*pieceSize:(i+1)*pieceSize], i, cvs[i*pieceLeaves:(i+1)*pieceLeaves])
			}
		}()
	}
	tail := pieces * pieceSize
	hashPiece(b[tail:lastOff], pieces, cvs[pieces*pieceLeaves:n-1])
	wg.Wait()
	var s stack
	for _, cv := range pcvs {
		s.push(cv, pieceHeight)
	}
	for _, cv := range cvs[pieces*pieceLeaves : n-1] {
		s.push(cv, 0)
	}
	root := s.root(last)
	if !keep {
		return root, nil
	}
	out := make([]CV, n)
	for i, w := range cvs[:n-1] {
		out[i] = toCV(w)
	}
	out[n-1] = toCV(guts.ChainingValue(last))
	return root, out
}
