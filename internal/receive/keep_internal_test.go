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
// bytes, with AIO and with preads; a wrong END is a digest error, and so
// is a byte of the target flipped behind the keeper's back in a touched
// leaf's untouched bytes.
func TestKeeperRebuildsTouchedLeaves(t *testing.T) {
	const L = digest.LeafSize
	size := int64(40*L + 1234)
	old := make([]byte, size)
	rand.NewChaCha8([32]byte{3}).Read(old)
	cur := bytes.Clone(old)
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
	flipped := bytes.Clone(cur)
	flipped[8*L+5000] ^= 1 // leaf 8: touched, after the ZERO run
	for _, tc := range []struct {
		name   string
		target []byte
		want   [32]byte
		ok     bool
	}{
		{"right", cur, digest.Sum256(cur), true},
		{"wrong", cur, digest.Sum256(old), false},
		{"flipped", flipped, digest.Sum256(cur), false},
	} {
		for _, noAIO := range []bool{false, true} {
			name := tc.name + "/aio"
			if noAIO {
				name = tc.name + "/pread"
			}
			t.Run(name, func(t *testing.T) { rebuild(t, recs, old, tc.target, tc.want, tc.ok, noAIO) })
		}
	}
}

type rec struct {
	off  int64
	data []byte // nil: zeros
	n    int64
}

// rebuild feeds recs to a keeper of the map of old onto target and checks
// its verdict on END with digest want.
func rebuild(t *testing.T, recs []rec, old, target []byte, want [32]byte, ok, noAIO bool) {
	size := int64(len(old))
	path := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(path, target, 0o600); err != nil {
		t.Fatal(err)
	}
	_, leaves := digest.Leaves(old)
	tree, err := digest.NewTree(size, leaves)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k := &keeper{of: path, size: size, tree: tree, rf: rf, noAIO: noAIO}
	k.startLeaves()
	if !noAIO && k.aio == nil {
		t.Logf("%s cannot be read with O_DIRECT and AIO: read with preads", path)
	}
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
	end := frame.Record{Type: frame.End, Offset: size, Digest: want}
	err = k.verify(&end)
	if ok && (err != nil || !end.Verified) {
		t.Fatalf("verify: %v, verified %v", err, end.Verified)
	}
	if !ok && (!errors.Is(err, frame.ErrDigest) || end.Verified) {
		t.Fatalf("verify of a wrong END: %v, verified %v", err, end.Verified)
	}
	if len(k.cvs) != 2+4+1+1 { // leaves 0-1, 5-8, 20, 40
		t.Errorf("%d leaves rehashed, want 8", len(k.cvs))
	}
}
