package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestDeltaFromMapFlippedBehind: a byte of the target flipped behind
// blkwrite's back (in the loop device's image, which moves neither the
// device's stamp nor its map), in a leaf the nightly delta touches but in
// a block the delta does not send, is caught by the read-back of that
// leaf: the delta is refused from the map, never verified, with AIO reads
// and with preads (BLKPIPE_AIO=0).
func TestDeltaFromMapFlippedBehind(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "blockdev")
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"aio", nil},
		{"pread", []string{"BLKPIPE_AIO=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// blkcat --sums and blkwrite each rehash a few random
			// leaves of the target before they trust its map: if
			// they pick the flipped one, the map is not used and the
			// read-back not tested, so the test starts again.
			for try := 0; ; try++ {
				if flippedBehind(t, tc.env, uint64(try)) {
					return
				}
				if try == 4 {
					t.Fatal("the sampled leaves caught the flipped byte in every try: the read-back was never tested")
				}
			}
		})
	}
}

// flippedBehind runs the test once and reports false when the map was
// not used because a sampled leaf showed the flip.
func flippedBehind(t *testing.T, env []string, seed uint64) bool {
	t.Helper()
	const size = 32 << 20
	old := randomBytes(size, 81+seed)
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, old)
	dev, image := testutil.LoopImage(t, size)
	fullCopy(t, srcPath, dev)

	src := bytes.Clone(old)
	touched := changeBlocks(src, 40, 82+seed)
	writeFile(t, srcPath, src)
	// The first touched leaf with a block the delta leaves as it is.
	flip := int64(-1)
	for leaf := int64(0); leaf < size/digest.LeafSize && flip < 0; leaf++ {
		if !touched[leaf] {
			continue
		}
		for b := leaf * digest.LeafSize; b < (leaf+1)*digest.LeafSize; b += 4096 {
			if bytes.Equal(old[b:b+4096], src[b:b+4096]) {
				flip = b + 1000
				break
			}
		}
	}
	if flip < 0 {
		t.Fatal("no touched leaf has an unchanged block")
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{old[flip] ^ 0x40}, flip); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "blockdev", "--flushbufs", dev)

	_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", dev, srcPath, dev))
	if strings.Contains(stderr, "is not what the map says") {
		t.Logf("a sampled leaf showed the flip at byte %d; again", flip)
		return false
	}
	if code != 1 || strings.Contains(stderr, "verified") || strings.Contains(stderr, "no valid") ||
		!strings.Contains(stderr, "the target's digest map with the delta's blocks hashes to") {
		t.Fatalf("byte %d of the target flipped behind blkwrite: exit %d, want refused from the map:\n%s", flip, code, stderr)
	}
	if _, stderr, code := sh(t, nil, "$BW --last "+dev); code != 1 || !strings.Contains(stderr, "no verified copy") {
		t.Errorf("--last after the refused delta: exit %d: %s", code, stderr)
	}
	return true
}
