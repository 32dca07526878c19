package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestSpaceBehindDevice: a device whose storage runs out inside it (a
// thin pool; here a loop device over a file on a full tmpfs) is not "a
// target smaller than the input": blkwrite says the storage behind it is
// out of space, where, and how many bytes were written before the error.
func TestSpaceBehindDevice(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mount", "umount", "losetup", "bash")
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	back := filepath.Join(mnt, "back")
	if err := os.Truncate(back, 0); err != nil {
		os.WriteFile(back, nil, 0o644)
	}
	os.Truncate(back, 8<<20)
	dev := testutil.LoopDevice(t, back)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, randomBytes(6<<20, 12))

	_, stderr, code := sh(t, nil, "$BC -q "+src+" | $BW -q "+dev)
	want := "blkwrite: the storage behind it is out of space: '" + dev + "' holds 8388608 bytes and the write at offset 2097152 was inside it: 2097152 bytes were written to '" + dev + "' before the error"
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "smaller than the input") {
		t.Errorf("raw: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	_, stderr, code = sh(t, nil, "$BC -q --frame "+src+" | $BW -q "+dev)
	for _, want := range []string{
		"blkwrite: error writing '" + dev + "' at offset 2097152: No space left on device (the storage behind it is out of space",
		"blkwrite: the copy is incomplete: 2097152 bytes landed on '" + dev + "'",
	} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("framed: exit %d, stderr %q; want 1 and %q", code, stderr, want)
		}
	}
}
