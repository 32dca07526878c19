package blockdev

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// mount mounts source (of type fstype) on a fresh temporary directory and
// unmounts it when the test ends.
func mount(tb testing.TB, fstype, source string) string {
	tb.Helper()
	testutil.NeedRoot(tb)
	testutil.NeedCmd(tb, "mount", "umount")
	dir := tb.TempDir()
	testutil.Run(tb, "mount", "-t", fstype, source, dir)
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

// randomImage writes size random bytes to a new file and returns its path
// and contents.
func randomImage(tb testing.TB, size int, seed uint64) (string, []byte) {
	tb.Helper()
	data := randomBytes(size, seed)
	p := filepath.Join(tb.TempDir(), "random.img")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p, data
}

// readAll reads the whole of path without O_DIRECT.
func readAll(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
