package sshtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestBenchUsage: scripts/bench.sh refuses a misspelt section at once,
// before it builds anything or writes its image into -d DIR.
func TestBenchUsage(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "bench.sh")
	dir := t.TempDir()
	out, err := exec.Command(script, "-s", "1", "-d", dir, "read", "raed").CombinedOutput()
	if code := sshtest.ExitCode(err); code != 2 || string(out) != "unknown section raed (sections: read aio pipe dropin device write cache rss pvcat digest frame delta changed changed-thin ssh usr1)\n" {
		t.Errorf("bench.sh raed: exit %d, output %q", code, out)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("bench.sh raed wrote %v", left)
	}
}
