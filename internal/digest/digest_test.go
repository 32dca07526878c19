package digest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"lukechampine.com/blake3"
)

// sizes covers the edges of chunks (1 KiB), SIMD buffers (16 KiB), leaves
// (64 KiB) and pieces (1 MiB), and counts of leaves that are not powers
// of two.
var sizes = []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 16383, 16384, 16385,
	LeafSize - 1, LeafSize, LeafSize + 1, 2 * LeafSize, 3*LeafSize + 5, 7 * LeafSize,
	pieceSize - 1, pieceSize, pieceSize + 1, 5*pieceSize + 12345, 17*pieceSize + 3*LeafSize}

func gen(kind string, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewSource(int64(n)))
	switch kind {
	case "random":
		r.Read(b)
	case "mixed": // random runs between zero runs
		for i := 0; i < n; i += 40000 {
			if (i/40000)%2 == 0 {
				r.Read(b[i:min(n, i+40000)])
			}
		}
	}
	return b
}

// hashWriter feeds b to a Hasher in uneven writes.
func hashWriter(b []byte, workers int, opts ...Option) (*Hasher, [Size]byte) {
	h := New(append(opts, WithWorkers(workers))...)
	r := rand.New(rand.NewSource(int64(len(b))))
	for len(b) > 0 {
		n := min(len(b), 1+r.Intn(3*pieceSize/2))
		h.Write(b[:n])
		b = b[n:]
	}
	return h, h.Sum()
}

func TestSum256(t *testing.T) {
	for _, kind := range []string{"random", "zero", "mixed"} {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s-%d", kind, n), func(t *testing.T) {
				b := gen(kind, n)
				want := blake3.Sum256(b)
				if got := Sum256(b); got != want {
					t.Fatalf("Sum256 = %x, want %x", got, want)
				}
				for _, w := range []int{1, 3} {
					h, got := hashWriter(b, w, WithLeaves())
					if got != want || h.Size() != int64(n) {
						t.Fatalf("Hasher (%d workers) = %x after %d bytes, want %x", w, got, h.Size(), want)
					}
					root, leaves := Leaves(b)
					if root != want || !equalCVs(leaves, h.Leaves()) || int64(len(leaves)) != NumLeaves(int64(n)) {
						t.Fatalf("Leaves: root %x, %d leaves, Hasher's equal %v", root, len(leaves), equalCVs(leaves, h.Leaves()))
					}
				}
				_, leaves := Leaves(b)
				got, err := Root(int64(n), leaves)
				if len(leaves) == 1 {
					if err != ErrOneLeaf {
						t.Fatalf("Root of one leaf: %v, want ErrOneLeaf", err)
					}
				} else if err != nil || got != want {
					t.Fatalf("Root = %x, %v, want %x", got, err, want)
				}
			})
		}
	}
}

func equalCVs(a, b []CV) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestB3sum checks the digests against the b3sum command.
func TestB3sum(t *testing.T) {
	testutil.NeedCmd(t, "b3sum")
	for _, kind := range []string{"random", "zero", "mixed"} {
		for _, n := range sizes {
			b := gen(kind, n)
			cmd := exec.Command("b3sum", "--no-names")
			cmd.Stdin = bytes.NewReader(b)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("b3sum: %v", err)
			}
			want := strings.TrimSpace(string(out))
			s := Sum256(b)
			if got := hex.EncodeToString(s[:]); got != want {
				t.Errorf("%s %d bytes: Sum256 %s, b3sum %s", kind, n, got, want)
			}
			if _, s := hashWriter(b, 2); hex.EncodeToString(s[:]) != want {
				t.Errorf("%s %d bytes: Hasher %x, b3sum %s", kind, n, s, want)
			}
		}
	}
}

// TestTreeUpdate rewrites a few leaves and checks that the updated root
// is the digest of the new bytes, for leaf counts around powers of two.
func TestTreeUpdate(t *testing.T) {
	for _, n := range []int{1, LeafSize, LeafSize + 1, 2*LeafSize - 7, 3 * LeafSize, 4 * LeafSize, 5*LeafSize + 1, 8 * LeafSize, 13*LeafSize + 99} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := gen("random", n)
			_, leaves := Leaves(b)
			tr, err := NewTree(int64(n), leaves)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewSource(7))
			for range 5 {
				i := r.Int63n(tr.Len())
				leaf := b[i*LeafSize : min(int64(n), (i+1)*LeafSize)]
				if len(leaf) > 0 {
					leaf[r.Intn(len(leaf))] ^= 0x5a
				}
				if _, err := tr.SetLeaf(i, leaf); err != nil {
					t.Fatal(err)
				}
				got, err := tr.Root()
				if want := blake3.Sum256(b); err != nil || got != want {
					t.Fatalf("after rewriting leaf %d: root %x, %v, want %x", i, got, err, want)
				}
			}
			if _, err := tr.SetLeaf(0, make([]byte, n+1)); err == nil {
				t.Fatal("SetLeaf accepted a leaf of the wrong size")
			}
		})
	}
}
