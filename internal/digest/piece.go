package digest

import "lukechampine.com/blake3/guts"

// PieceSize is the size of the pieces a Hasher hashes on its goroutines,
// and of those SumPiece hashes for AddPiece.
const PieceSize = pieceSize

// PieceSum is what SumPiece computes of one piece of a source: enough to
// place it in the source's tree without its bytes.
type PieceSum struct {
	n      int                    // bytes in the piece
	leaves [pieceLeaves][8]uint32 // its leaves' chaining values (all but the last of a short piece)
	last   guts.Node              // its last leaf's node, for the root when it ends the source
	cv     [8]uint32              // the piece's own chaining value, when whole
}

// SumPiece hashes b, the piece of a source that starts at byte
// piece×PieceSize: PieceSize bytes, or 1 to PieceSize for the source's
// last piece. Callers hash pieces on their own goroutines and hand the
// sums to a Hasher's AddPiece in order.
func SumPiece(b []byte, piece int64) *PieceSum {
	s := &PieceSum{n: len(b)}
	n := NumLeaves(int64(len(b)))
	lastOff := (n - 1) * LeafSize
	hashPiece(b[:lastOff], piece, s.leaves[:n-1])
	s.last = leafNode(b[lastOff:], piece*pieceLeaves+n-1)
	if len(b) == pieceSize {
		s.leaves[pieceLeaves-1] = guts.ChainingValue(s.last)
		tmp := s.leaves
		s.cv = perfectCV(tmp[:])
	}
	return s
}

// AddPiece adds the next piece of the source by its sum (SumPiece) instead
// of its bytes. Every piece but the source's last must be whole, and
// anything written before must be too: a whole number of pieces. Like
// Write it must not follow Sum or Close.
func (h *Hasher) AddPiece(s *PieceSum) {
	if h.closed {
		panic("digest: AddPiece after Sum or Close")
	}
	if len(h.buf) == pieceSize {
		h.dispatch() // more follows it
	}
	if len(h.buf) != 0 || h.pending != nil && h.pending.n != pieceSize {
		panic("digest: AddPiece after a partial piece")
	}
	h.flushPending()
	h.pending = s
	h.size += int64(s.n)
}

// flushPending hands the piece AddPiece kept back to the merge, now that
// more of the source follows it.
func (h *Hasher) flushPending() {
	s := h.pending
	if s == nil {
		return
	}
	if s.n != pieceSize {
		panic("digest: more of the source after a partial piece")
	}
	if !h.started {
		h.start()
	}
	if h.buf != nil {
		h.free <- h.buf // an empty buffer of its own, not needed now
		h.buf = nil
	}
	res := make(chan pieceSum, 1)
	res <- pieceSum{cv: s.cv, leaves: s.leaves}
	h.queue <- res
	h.pieces++
	h.pending = nil
}

// sumPending is Sum's end when the last piece came through AddPiece.
func (h *Hasher) sumPending() {
	s := h.pending
	n := NumLeaves(int64(s.n))
	for _, cv := range s.leaves[:n-1] {
		h.stack.push(cv, 0)
	}
	h.root = h.stack.root(s.last)
	if h.keep {
		h.leaves = append(h.leaves, s.leaves[:n-1]...)
		h.leaves = append(h.leaves, guts.ChainingValue(s.last))
	}
	h.pending = nil
}
