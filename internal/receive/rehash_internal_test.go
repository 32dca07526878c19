package receive

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// TestRehash: ranges longer than one read of rehashRead leaves, one
// ending at the short last leaf, set the tree's leaves and the block sums
// to the target's bytes (the root and sums of the target when every leaf
// is rehashed), and a leaf beyond the source is an error naming it.
func TestRehash(t *testing.T) {
	const L = digest.LeafSize
	size := int64((2*rehashRead+5)*L + 1234)
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{5}).Read(b)
	path := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs := int64(state.KeptBlockSize)
	newKeeper := func() *keeper {
		tree, err := digest.NewTree(size, make([]digest.CV, (size+L-1)/L))
		if err != nil {
			t.Fatal(err)
		}
		return &keeper{size: size, of: path, rf: f, tree: tree,
			sums: make([]uint64, sums.Blocks(size, state.KeptBlockSize))}
	}
	last := (size - 1) / L
	k := newKeeper()
	if err := k.rehash([][2]int64{{0, 2}, {3, rehashRead + 9}, {rehashRead + 10, last}}); err != nil {
		t.Fatal(err)
	}
	if got, err := k.tree.Root(); err != nil || got != digest.Sum256(b) {
		t.Errorf("root after rehashing every leaf: %x, %v; want %x", got, err, digest.Sum256(b))
	}
	want := make([]uint64, len(k.sums))
	for j := range want {
		want[j] = sums.Sum(b[int64(j)*bs : min(int64(j+1)*bs, size)])
	}
	if !slices.Equal(k.sums, want) {
		t.Error("block sums after rehashing every leaf differ from the target's")
	}
	k = newKeeper()
	err = k.rehash([][2]int64{{last - 2, last + 3}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("touched leaf %d is beyond the source", last+1)) {
		t.Errorf("a range beyond the source: %v", err)
	}
}
