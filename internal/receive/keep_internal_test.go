package receive

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
)

// TestKeeperRebuildsTouchedLeaves: records that straddle leaves, a ZERO
// run over several leaves and one in the short last leaf update the map's
// tree to the new source's root, reading only the touched leaves' other
// bytes; a wrong END is a digest error.
func TestKeeperRebuildsTouchedLeaves(t *testing.T) {
	const L = digest.LeafSize
	size := int64(40*L + 1234)
	old := make([]byte, size)
	rand.NewChaCha8([32]byte{3}).Read(old)
	cur := bytes.Clone(old)
	type rec struct {
		off  int64
		data []byte // nil: zeros
		n    int64
	}
	recs := []rec{
		{3, []byte("abc"), 3},
		{L - 100, bytes.Repeat([]byte{9}, 300), 300}, // straddles leaves 0 and 1
		{5*L + 7, nil, 3*L + 11},                     // zeros over leaves 5 to 8
		{20 * L, bytes.Repeat([]byte{1}, L), L},      // leaf 20 whole
		{40*L + 1000, nil, 234},                      // the short last leaf's end
	}
	for _, r := range recs {
		if r.data == nil {
			clear(cur[r.off : r.off+r.n])
		} else {
			copy(cur[r.off:], r.data)
		}
	}
	path := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(path, cur, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want [32]byte
		ok   bool
	}{
		{"right", digest.Sum256(cur), true},
		{"wrong", digest.Sum256(old), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, leaves := digest.Leaves(old)
			tree, err := digest.NewTree(size, leaves)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			k := &keeper{of: path, size: size, tree: tree, rf: rf}
			k.startLeaves()
			defer k.close()
			for _, r := range recs {
				if r.data == nil {
					err = k.zero(r.off, r.n)
				} else {
					err = k.data(r.data, r.off)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			end := frame.Record{Type: frame.End, Offset: size, Digest: tc.want}
			err = k.verify(&end)
			if tc.ok && (err != nil || !end.Verified) {
				t.Fatalf("verify: %v, verified %v", err, end.Verified)
			}
			if !tc.ok && (!errors.Is(err, frame.ErrDigest) || end.Verified) {
				t.Fatalf("verify of a wrong END: %v, verified %v", err, end.Verified)
			}
			if len(k.cvs) != 2+4+1+1 { // leaves 0-1, 5-8, 20, 40
				t.Errorf("%d leaves rehashed, want 8", len(k.cvs))
			}
		})
	}
}
