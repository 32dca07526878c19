package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// This file tests what a restricted key (blkwrite --allow) may do, and
// the findings of issue #19 as regressions.

// stream frames data in-process with opts.
func stream(t testing.TB, data []byte, opts ...frame.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := frame.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// forced runs blkwrite as sshd runs a forced command: forced are its
// arguments, orig the client's command.
func blkwriteTool(t *testing.T) string { return testutil.Tool(t, "blkwrite") }

func forced(t *testing.T, forcedArgs []string, orig string, stdin []byte) (string, string, int) {
	t.Helper()
	cmd := exec.Command(blkwriteTool(t), forcedArgs...)
	cmd.Env = append(os.Environ(), "SSH_ORIGINAL_COMMAND="+orig, "BLKPIPE_STATE_DIR="+filepath.Join(t.TempDir(), "state"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return runCmd(t, cmd)
}

// TestRestrictSymlinkEscape is finding 1: /imgs/lnk/../data.img, where
// lnk is a symlink to a directory elsewhere, is the file the kernel
// reaches (elsewhere/../data.img), not /imgs/data.img.
func TestRestrictSymlinkEscape(t *testing.T) {
	root := t.TempDir()
	imgs := filepath.Join(root, "imgs")
	far := filepath.Join(root, "far", "dir")
	os.MkdirAll(imgs, 0o755)
	os.MkdirAll(far, 0o755)
	os.Symlink(far, filepath.Join(imgs, "lnk"))
	allowed := filepath.Join(imgs, "data.img")
	escaped := filepath.Join(root, "far", "data.img")
	data := sample(1<<16, 1)
	s := stream(t, data, frame.WithSourceSize(int64(len(data))))
	for _, exists := range []bool{false, true} {
		for _, form := range []string{"", "of="} {
			os.Remove(allowed)
			os.Remove(escaped)
			if exists {
				os.WriteFile(allowed, nil, 0o644)
				os.WriteFile(escaped, nil, 0o644)
			}
			orig := "blkwrite " + form + imgs + "/lnk/../data.img"
			_, stderr, code := forced(t, []string{"--allow", allowed}, orig, s)
			if code != 3 || !strings.Contains(stderr, "refused: target '"+imgs+"/lnk/../data.img' is not allowed") {
				t.Errorf("exists %v, %q: exit %d, stderr %q; want refused (3)", exists, orig, code, stderr)
			}
			if got, err := os.ReadFile(escaped); exists && len(got) != 0 || !exists && err == nil {
				t.Errorf("exists %v, %q wrote or created %s", exists, orig, escaped)
			}
		}
	}
	// The allowed file through its own directory's "..": the same file.
	os.Remove(allowed)
	_, stderr, code := forced(t, []string{"--allow", allowed}, "blkwrite "+imgs+"/../imgs/data.img", s)
	if code != 0 || !bytes.Equal(mustRead(t, allowed), data) {
		t.Errorf("allowed file through ..: exit %d, stderr %q", code, stderr)
	}
	// A dangling symlink as the allowed name: O_CREAT would create its
	// target, so the forced command itself is refused.
	dangling := filepath.Join(imgs, "dangling.img")
	os.Symlink(escaped, dangling)
	os.Remove(escaped)
	_, stderr, code = forced(t, []string{"--allow", dangling}, "blkwrite "+dangling, s)
	if code == 0 || !strings.Contains(stderr, "dangling symlink") {
		t.Errorf("dangling allowed path: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(escaped); err == nil {
		t.Errorf("the dangling symlink's target was created")
	}
}

// TestRestrictOracle is finding 2: a delta stream with no records whose
// END digest guesses the hash of the target's first n bytes is refused
// before anything is read back, as is a delta that leaves part of a block
// to be read back.
func TestRestrictOracle(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "t.img")
	secret := sample(1<<16, 2)
	os.WriteFile(target, secret, 0o644)
	none := func(int64, []byte) bool { return false }
	tests := []struct {
		name string
		s    []byte
		msg  string
	}{
		{"right guess of the first byte", stream(t, secret[:1], frame.WithSourceSize(1), frame.WithFilter(none)),
			"refused: the stream's source is 1 bytes but '" + target + "' is 65536 bytes"},
		{"right guess of the first 4 KiB", stream(t, secret[:4096], frame.WithSourceSize(4096), frame.WithFilter(none)),
			"refused: the stream's source is 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := forced(t, []string{"--allow", target}, "blkwrite "+target, tt.s)
			if code != 3 || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want 3 and %q", code, stderr, tt.msg)
			}
			if !bytes.Equal(mustRead(t, target), secret) {
				t.Error("the target changed")
			}
		})
	}
	// A whole-size delta with no records verifies only a guess of the
	// whole target, which a full copy would prove as well; it changes
	// nothing.
	s := stream(t, secret, frame.WithSourceSize(int64(len(secret))), frame.WithFilter(none))
	if _, stderr, code := forced(t, []string{"--allow", target}, "blkwrite "+target, s); code != 0 {
		t.Errorf("whole-target delta: exit %d, stderr %q", code, stderr)
	}
}
