package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestThinPoolFull copies onto a thin volume whose pool fills up before
// the volume does (in a QEMU guest: LVM is never touched on the host).
// blkwrite used to say "target is smaller than the input"; it names the
// thin pool, where the write failed, and what was written before.
func TestThinPoolFull(t *testing.T) {
	if !qemutest.InGuest() {
		qemutest.NeedQEMU(t)
		qemutest.RunTest(t, qemutest.Config{
			Disks: []string{testutil.SparseFile(t, 128<<20)},
			Files: map[string]string{"/test/blkwrite": testutil.Tool(t, "blkwrite"), "/test/blkcat": testutil.Tool(t, "blkcat")},
		})
		return
	}
	testutil.NeedCmd(t, "lvcreate")
	script := "pvcreate -q -y /dev/vda && vgcreate -q vg /dev/vda && " +
		"lvcreate -q -y -L 16M --errorwhenfull y -T vg/pool && lvcreate -q -y -V 64M -T vg/pool -n thin"
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, randomBytes(40<<20, 13))
	for _, tc := range []struct{ name, script string }{
		{"raw", "/test/blkcat -q " + src + " | /test/blkwrite -q /dev/vg/thin"},
		{"framed", "/test/blkcat -q -z lz4 " + src + " | /test/blkwrite -q /dev/vg/thin"},
	} {
		cmd := exec.Command("sh", "-c", tc.script)
		cmd.Env = append(os.Environ(), "BLKPIPE_STATE_DIR="+t.TempDir())
		_, stderr, code := runCmd(t, cmd)
		want := "the thin pool (or other device-mapper storage) behind it is out of space: '/dev/vg/thin' holds 67108864 bytes and the write at offset "
		if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "smaller than the input") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.name, code, stderr, want)
		}
	}
}
