package qemutest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestCpio unpacks what cpioWriter wrote with busybox cpio.
func TestCpio(t *testing.T) {
	testutil.NeedCmd(t, "busybox")
	var b bytes.Buffer
	c := newCpio(&b)
	c.file("/a/b/file", 0o640, []byte("hello"))
	c.symlink("/a/link", "b/file")
	c.mkdirAll("/empty/dir")
	c.file("/odd", 0o755, []byte("x"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	archive := b.String()
	dir := t.TempDir()
	cmd := exec.Command("busybox", "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio: %v: %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "a/link")); err != nil || string(got) != "hello" {
		t.Errorf("a/link reads %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "a/b/file")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("a/b/file: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "empty/dir")); err != nil || !fi.IsDir() {
		t.Errorf("empty/dir: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "odd")); string(got) != "x" {
		t.Errorf("odd reads %q", got)
	}
	if n := strings.Count(archive, "070701"); n != 8 {
		t.Errorf("%d headers, want 8 (a, a/b, a/b/file, a/link, empty, empty/dir, odd, trailer)", n)
	}
}
