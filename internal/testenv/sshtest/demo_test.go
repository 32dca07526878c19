package sshtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestDemoScript runs scripts/demo.sh as the README's first command: it
// must end with OK, and leave nothing in TMPDIR without a WORKDIR; a
// relative WORKDIR is taken from where it was started and kept.
func TestDemoScript(t *testing.T) {
	testutil.NeedCmd(t, "bash", "go", "sha256sum", "awk")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "demo.sh")
	tmp := t.TempDir()
	cwd := t.TempDir()
	for _, args := range [][]string{nil, {"kept"}} {
		cmd := exec.Command(script, args...)
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "  OK: the copy is byte-identical to the source\n") {
			t.Fatalf("demo.sh %q: %v\n%s", args, err, out)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("demo.sh %q left %v in TMPDIR", args, left)
		}
	}
	for _, f := range []string{"source.img", "backup.img"} {
		if _, err := os.Stat(filepath.Join(cwd, "kept", f)); err != nil {
			t.Errorf("demo.sh kept: %v", err)
		}
	}
}
