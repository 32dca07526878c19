package sshtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// tools builds blkcat and blkwrite, and pvcat and snapctl where this branch
// has them, and returns the directory holding them.
func tools(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(testutil.Tool(t, "blkcat"))
	testutil.Tool(t, "blkwrite")
	for _, name := range []string{"pvcat", "snapctl"} {
		if has(t, name) {
			testutil.Tool(t, name)
		}
	}
	return dir
}

// has reports whether this branch has cmd/<name>.
func has(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(testutil.ModuleRoot(t), "cmd", name, "main.go"))
	return err == nil
}

// needFrame skips (fails in CI) unless blkcat has --frame and -z.
func needFrame(t *testing.T) {
	t.Helper()
	if !hasFrame(t) {
		testutil.Skip(t, "feature blkcat --frame not on this branch yet")
	}
}

func hasFrame(t *testing.T) bool {
	t.Helper()
	out, _ := exec.Command(testutil.Tool(t, "blkcat"), "--help").Output()
	return strings.Contains(string(out), "--frame")
}

// verifiedLine matches blkwrite's last line after a verified framed copy.
var verifiedLine = regexp.MustCompile(`(?m)^blkwrite: verified blake3 ([0-9a-f]{64})$`)

// TestCopyExt4 copies a real ext4 filesystem image through ssh, raw and
// framed, and checks the target byte for byte, with fsck and by mounting
// it and comparing every file.
func TestCopyExt4(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "e2fsck", "mount")
	dir := tools(t)
	const size = 96 << 20
	tree := sshtest.MixedTree(t, 48<<20)
	img := sshtest.Ext4Image(t, size, tree)
	want := sshtest.BLAKE3(t, img)
	wantFiles := sshtest.TreeDigests(t, tree)
	src := testutil.LoopDevice(t, img)
	lab := sshtest.New(t, dir, []string{"backup"})

	for _, tc := range []struct {
		name, flags string
		framed      bool
	}{
		{"raw", "", false},
		{"frame", "--frame", true},
		{"lz4", "-z lz4", true},
		{"zstd", "-z zstd", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.framed {
				needFrame(t)
			}
			dst, _ := testutil.LoopImage(t, size)
			r := lab.Run(lab.Client, `blkcat $FLAGS "$SRC" | $SSH backup blkwrite "$DST"`, 2*time.Minute,
				"FLAGS="+tc.flags, "SRC="+src, "DST="+dst)
			if r.Code != 0 {
				t.Fatalf("pipeline exit %d\n%s", r.Code, r.Stderr)
			}
			if got := sshtest.BLAKE3(t, dst); got != want {
				t.Fatalf("target sha256 %s, source %s", got, want)
			}
			if tc.framed {
				m := verifiedLine.FindStringSubmatch(r.Stderr)
				if m == nil || m[1] != want {
					t.Fatalf("blkwrite did not report the source's digest %s:\n%s", want, r.Stderr)
				}
			} else if strings.Contains(r.Stderr, "verified") {
				t.Fatalf("a raw copy claims verification:\n%s", r.Stderr)
			}
			testutil.Run(t, "e2fsck", "-f", "-n", dst)
			mnt := sshtest.Mount(t, dst)
			got := sshtest.TreeDigests(t, mnt)
			if len(got) != len(wantFiles) {
				t.Fatalf("target has %d files, source %d", len(got), len(wantFiles))
			}
			for name, sum := range wantFiles {
				if got[name] != sum {
					t.Fatalf("%s: sha256 %q on the target, %q in the source", name, got[name], sum)
				}
			}
		})
	}
}
