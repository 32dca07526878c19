package digest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"lukechampine.com/blake3"
)

// TestSumAt compares SumAt with the library's one-shot hash and Leaves,
// for chunk sizes and worker counts that split the source differently.
func TestSumAt(t *testing.T) {
	for _, kind := range []string{"random", "mixed"} {
		for _, n := range sizes {
			b := gen(kind, n)
			want := blake3.Sum256(b)
			_, wantLeaves := Leaves(b)
			for _, cfg := range []ReadConfig{{}, {Workers: 1, Chunk: 1}, {Workers: 3, Chunk: 3 << 20, Align: 512}} {
				cfg.Leaves = true
				t.Run(fmt.Sprintf("%s/%d/w%d-c%d", kind, n, cfg.Workers, cfg.Chunk), func(t *testing.T) {
					got, leaves, err := SumAt(bytes.NewReader(b), int64(n), cfg)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("SumAt = %x, want %x", got, want)
					}
					if !equalCVs(leaves, wantLeaves) {
						t.Fatalf("SumAt's %d leaves differ from Leaves' %d", len(leaves), len(wantLeaves))
					}
				})
			}
		}
	}
}

// TestSumAtShort: a source shorter than the size asked for is an error
// naming where it ended, in a whole piece and in the tail.
func TestSumAtShort(t *testing.T) {
	b := gen("random", 5*pieceSize+100)
	for _, n := range []int{3*pieceSize + 7, 5*pieceSize + 50} {
		_, _, err := SumAt(bytes.NewReader(b[:n]), int64(len(b)), ReadConfig{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("source of %d bytes for %d: err %v, want io.ErrUnexpectedEOF", n, len(b), err)
		}
	}
}

// TestWriteLent mixes lent and copied writes of uneven sizes, with and
// without the source's size declared, and checks the digest, the leaves,
// and that every piece held is released once.
func TestWriteLent(t *testing.T) {
	for _, n := range sizes {
		b := gen("mixed", n)
		want := blake3.Sum256(b)
		_, wantLeaves := Leaves(b)
		for _, tc := range []struct {
			step  int
			sized bool
		}{{pieceSize, false}, {pieceSize, true}, {3 * pieceSize, false}, {3 * pieceSize, true}, {pieceSize + 4096, true}, {4096, false}} {
			step := tc.step
			var held, released atomic.Int64
			opts := []Option{WithLeaves(), WithWorkers(2)}
			if tc.sized {
				opts = append(opts, WithSize(int64(n)))
			}
			h := New(opts...)
			for i, p := 0, b; len(p) > 0; i++ {
				c := min(len(p), step)
				if i%3 == 2 {
					h.Write(p[:c])
				} else {
					h.WriteLent(p[:c], func() { held.Add(1) }, func() { released.Add(1) })
				}
				p = p[c:]
			}
			if got := h.Sum(); got != want {
				t.Fatalf("%d bytes in writes of %d: %x, want %x", n, step, got, want)
			}
			if !equalCVs(h.Leaves(), wantLeaves) {
				t.Fatalf("%d bytes in writes of %d: leaves differ", n, step)
			}
			if held.Load() != released.Load() {
				t.Fatalf("%d bytes in writes of %d: %d pieces held, %d released", n, step, held.Load(), released.Load())
			}
			// Writes of one piece each are lent only when the Hasher
			// knows which is the last: every lent one but the source's
			// last, if it is whole.
			if step == pieceSize {
				lent := int64(0)
				for i := 0; tc.sized && (i+1)*pieceSize < n; i++ {
					if i%3 != 2 {
						lent++
					}
				}
				if held.Load() != lent {
					t.Fatalf("%d bytes in writes of %d, size declared %v: %d pieces lent, want %d", n, step, tc.sized, held.Load(), lent)
				}
			}
		}
	}
}

// TestAddPiece feeds sources as pieces hashed by SumPiece, after a prefix
// of whole pieces written (or lent) the usual way, and checks the digest
// and the leaves.
func TestAddPiece(t *testing.T) {
	for _, n := range sizes {
		b := gen("mixed", n)
		want := blake3.Sum256(b)
		_, wantLeaves := Leaves(b)
		for _, prefix := range []int{0, 1, 3} {
			h := New(WithLeaves(), WithWorkers(2))
			off := 0
			for i := 0; i < prefix && off+pieceSize < n; i++ {
				if i%2 == 0 {
					h.Write(b[off : off+pieceSize])
				} else {
					h.WriteLent(b[off:off+pieceSize], func() {}, func() {})
				}
				off += pieceSize
			}
			for ; off < n; off += pieceSize {
				h.AddPiece(SumPiece(b[off:min(off+pieceSize, n)], int64(off/pieceSize)))
			}
			if got := h.Sum(); got != want {
				t.Fatalf("%d bytes, %d pieces written first: %x, want %x", n, prefix, got, want)
			}
			if !equalCVs(h.Leaves(), wantLeaves) {
				t.Fatalf("%d bytes, %d pieces written first: leaves differ", n, prefix)
			}
		}
	}
}

// TestHasherPieces: the Hasher's own pieces are 2×workers+2 for few
// workers and never more than maxPieces, however many workers hash.
func TestHasherPieces(t *testing.T) {
	for _, tc := range []struct{ workers, want int }{{1, 4}, {2, 6}, {8, maxPieces}, {64, maxPieces}} {
		h := New(WithWorkers(tc.workers))
		h.Write([]byte{1})
		if got := cap(h.free); got != tc.want {
			t.Errorf("%d workers: %d pieces, want %d", tc.workers, got, tc.want)
		}
		h.Close()
	}
}
