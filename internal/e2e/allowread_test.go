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

// TestAllowRead runs blkcat as the read-only key of a restore runs it:
// command="blkcat --allow-read T" with the client's command in
// SSH_ORIGINAL_COMMAND. It reads T, framed or raw, and its sums, and
// nothing else: no other path, no symlink escape, no of=, no sums file.
func TestAllowRead(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	target := filepath.Join(dir, "data.img")
	secret := filepath.Join(dir, "secret.img")
	out := filepath.Join(dir, "out.img")
	data := sample(1<<17, 8)
	os.WriteFile(target, data, 0o644)
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.MkdirAll(filepath.Join(dir, "far", "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "far", "data.img"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(dir, "far", "d"), filepath.Join(dir, "lnk"))
	os.Symlink(target, filepath.Join(dir, "link.img"))

	wantSums, _, _ := run(t, nil, blkcat, "--sums", target)
	tests := []struct {
		name, client string
		code         int
		check        func(stdout string) bool
		msg          string
	}{
		{"raw", "blkcat " + target, 0, func(s string) bool { return s == string(data) }, ""},
		{"if= and bs=", "blkcat if=" + target + " bs=64K status=none", 0, func(s string) bool { return s == string(data) }, ""},
		{"through a symlink", "blkcat " + dir + "/link.img", 0, func(s string) bool { return s == string(data) }, ""},
		{"framed", "blkcat --frame -z lz4 " + target, 0, func(s string) bool { return strings.HasPrefix(s, frame.Magic) }, ""},
		{"sums", "blkcat --sums " + target, 0, func(s string) bool { return s == wantSums }, ""},
		{"other path", "blkcat " + secret, 3, nil, "refused: source '" + secret + "' is not allowed"},
		{"symlink and ..", "blkcat " + dir + "/lnk/../data.img", 3, nil, "is not allowed"},
		{"of=", "blkcat " + target + " of=" + out, 3, nil, "refused: this key reads to standard output only"},
		{"two sources", "blkcat if=" + secret + " " + target, 2, nil, ""},
		{"sums file", "blkcat --against " + secret + " " + target, 3, nil, "refused: this key reads sums from standard input only"},
		{"widen", "blkcat --allow-read " + secret + " " + secret, 3, nil, "refused: the client may not change the allow list"},
		{"another program", "cat " + secret, 3, nil, "refused: this key may only run blkcat"},
		{"blkwrite", "blkwrite " + target, 3, nil, "refused: this key may only run blkcat"},
		{"no source", "blkcat", 3, nil, "refused: no source given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(blkcat, "--allow-read", target)
			cmd.Env = append(os.Environ(), "SSH_ORIGINAL_COMMAND="+tt.client)
			cmd.Stdin = bytes.NewReader(nil)
			stdout, stderr, code := runCmd(t, cmd)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if tt.check != nil && !tt.check(stdout) {
				t.Errorf("stdout (%d bytes) is not what the key should read", len(stdout))
			}
			if tt.code != 0 && strings.Contains(stdout, "secret") {
				t.Error("a refused request read the secret")
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused request wrote " + out)
			}
		})
	}
}
