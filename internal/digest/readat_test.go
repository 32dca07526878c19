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

// TestWriteLent mixes lent and copied writes of uneven sizes and checks
// the digest, the leaves, and that every piece held is released once.
func TestWriteLent(t *testing.T) {
	for _, n := range sizes {
		b := gen("mixed", n)
		want := blake3.Sum256(b)
		_, wantLeaves := Leaves(b)
		for _, step := range []int{pieceSize, 3 * pieceSize, pieceSize + 4096, 4096} {
			var held, released atomic.Int64
			h := New(WithLeaves(), WithWorkers(2))
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
