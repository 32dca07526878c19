package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestAllow runs blkwrite as an ssh forced command would:
// command="blkwrite --allow T --allow-raw" with the client's command in
// SSH_ORIGINAL_COMMAND (raw data needs --allow-raw; TestRestrictOptions
// has the default).
func TestAllow(t *testing.T) {
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	allowedT := filepath.Join(dir, "allowed.img")
	other := filepath.Join(dir, "other.img")
	link := filepath.Join(dir, "link.img")
	os.WriteFile(allowedT, nil, 0o644)
	os.Symlink(allowedT, link)
	data := bytes.Repeat([]byte("blkpipe!"), 1000)

	tests := []struct {
		name   string
		orig   string // SSH_ORIGINAL_COMMAND; "-" for unset
		args   []string
		code   int
		stderr string // prefix of stderr
		wrote  string // file that must hold data afterwards
	}{
		{"allowed", "blkwrite " + allowedT, nil, 0, "15+1 records in", allowedT},
		{"allowed with operands", "blkwrite of=" + allowedT + " bs=4K status=none", nil, 0, "", allowedT},
		{"allowed via symlink", "blkwrite '" + link + "'", nil, 0, "", allowedT},
		{"full path of the tool", "/usr/local/bin/blkwrite " + allowedT, nil, 0, "", allowedT},
		{"other target", "blkwrite " + other, nil, 3, "blkwrite: refused: target '" + other + "' is not allowed; allowed: " + allowedT, ""},
		{"no target", "blkwrite bs=4M", nil, 3, "blkwrite: refused: no target given; allowed: " + allowedT, ""},
		{"if=", "blkwrite if=/etc/shadow of=" + allowedT, nil, 3, "blkwrite: refused: the client may not read a local file (if=)", ""},
		{"widen allow list", "blkwrite --allow " + other + " " + other, nil, 3, "blkwrite: refused: the client may not change the forced command's options (--allow)", ""},
		{"add --allow-raw", "blkwrite --allow-raw " + allowedT, nil, 3, "blkwrite: refused: the client may not change the forced command's options (--allow-raw)", ""},
		{"lengthen --idle-timeout", "blkwrite --idle-timeout=1000h " + allowedT, nil, 3, "blkwrite: refused: the client may not change the forced command's options (--idle-timeout)", ""},
		{"another program", "cat /etc/passwd", nil, 3, `blkwrite: refused: this key may only run blkwrite, not "cat /etc/passwd"`, ""},
		{"shell syntax", "blkwrite " + allowedT + "; rm -rf /", nil, 3, "blkwrite: refused: shell syntax ';' in the client's command", ""},
		{"no ssh: own args", "-", []string{allowedT}, 0, "", allowedT},
		{"no ssh: other target", "-", []string{other}, 3, "blkwrite: refused: target '" + other + "' is not allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(other)
			os.WriteFile(allowedT, nil, 0o644)
			cmd := exec.Command(blkwrite, append([]string{"--allow", allowedT, "--allow-raw"}, tt.args...)...)
			cmd.Env = os.Environ()
			if tt.orig != "-" {
				cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND="+tt.orig)
			}
			cmd.Stdin = bytes.NewReader(data)
			_, stderr, code := runCmd(t, cmd)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if !strings.HasPrefix(stderr, tt.stderr) {
				t.Errorf("stderr %q, want prefix %q", stderr, tt.stderr)
			}
			if tt.wrote != "" {
				got, _ := os.ReadFile(tt.wrote)
				if !bytes.Equal(got, data) {
					t.Errorf("%s holds %d bytes, want the %d written", tt.wrote, len(got), len(data))
				}
			} else {
				if got, _ := os.ReadFile(allowedT); len(got) != 0 {
					t.Errorf("refused request still wrote %d bytes", len(got))
				}
				if _, err := os.Stat(other); err == nil {
					t.Errorf("refused request created %s", other)
				}
			}
		})
	}
}
