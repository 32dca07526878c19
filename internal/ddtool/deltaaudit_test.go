package ddtool_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testutil"
)

// TestDeltaAssumeZeroedRefused: --assume-zeroed skips ZERO records, which
// in a delta stream replace blocks that held data on the target (the
// previous copy): blkwrite refuses the combination before writing,
// instead of leaving those blocks as they were and printing "verified".
func TestDeltaAssumeZeroedRefused(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	base := randomBytes(64<<10, 31)
	src := append([]byte(nil), base...)
	copy(src[3*4096:4*4096], make([]byte, 4096)) // data → zeros: a ZERO record
	srcPath, dst, sumsPath := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "sums")
	writeFile(t, srcPath, src)
	writeFile(t, dst, base)
	sums, _, code := run(t, nil, blkcat, "-q", "--sums", dst)
	if code != 0 {
		t.Fatal("--sums failed")
	}
	writeFile(t, sumsPath, []byte(sums))
	delta, _, code := run(t, nil, blkcat, "-q", "--against", sumsPath, srcPath)
	if code != 0 {
		t.Fatal("--against failed")
	}
	_, stderr, code := run(t, []byte(delta), blkwrite, "-q", "--assume-zeroed", dst)
	want := fmt.Sprintf("blkwrite: --assume-zeroed does not apply to a delta stream: its ZERO records replace blocks that hold data on '%s'; nothing was written\n", dst)
	if code != 2 || stderr != want {
		t.Errorf("exit %d, stderr %q, want exit 2, %q", code, stderr, want)
	}
	if !bytes.Equal(mustRead(t, dst), base) {
		t.Errorf("the refused delta changed the target")
	}
	// Without it, the same stream lands.
	if _, stderr, code := run(t, []byte(delta), blkwrite, "-q", dst); code != 0 || !bytes.Equal(mustRead(t, dst), src) {
		t.Errorf("delta: exit %d, %q, target holds the source: %v", code, stderr, bytes.Equal(mustRead(t, dst), src))
	}
}
