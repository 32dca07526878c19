package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestRestrictOptions lists what a key may and may not do by default
// (without --allow-raw) with a framed stream or raw data: findings 3 and
// 4 and the "Also" list of issue #19.
func TestRestrictOptions(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "t.img")
	old := sample(1<<16, 3)
	data := sample(1<<16, 4)
	full := stream(t, data, frame.WithSourceSize(int64(len(data))))
	tests := []struct {
		name   string
		client string
		stdin  []byte
		code   int
		msg    string // in stderr
		want   []byte // the target afterwards
	}{
		{"framed copy", "blkwrite " + target, full, 0, "verified blake3", data},
		{"raw data", "blkwrite " + target, data, 3, "refused: 'standard input' is not a framed stream", old},
		{"--raw", "blkwrite --raw " + target, full, 3, "this key may not use raw data (--raw)", old},
		{"seek=", "blkwrite seek=1 " + target, full, 3, "this key may not use seek=", old},
		{"count=0 truncates", "blkwrite count=0 " + target, data, 3, "this key may not use count=", old},
		{"oflag=append", "blkwrite oflag=append conv=notrunc " + target, data, 3, "this key may not use oflag=append", old},
		{"conv=notrunc", "blkwrite conv=notrunc " + target, data, 3, "this key may not use conv=notrunc", old},
		{"--no-verify", "blkwrite --no-verify " + target, full, 3, "this key may not use --no-verify", old},
		{"--assume-zeroed", "blkwrite --assume-zeroed " + target, full, 3, "this key may not use --assume-zeroed", old},
		// Finding 4: with no source size a stream could make blkwrite
		// hash a ZERO run of any length (a 1 PiB one: frame's
		// TestRejectLimit).
		{"unknown source size", "blkwrite " + target, stream(t, data), 3, "the stream does not declare its source size", old},
		{"smaller delta", "blkwrite " + target, stream(t, data[:4096], frame.WithSourceSize(4096), frame.WithFilter(func(int64, []byte) bool { return true })), 3,
			"the stream's source is 4096 bytes but", old},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(target, old, 0o644)
			_, stderr, code := forced(t, []string{"--allow", target}, tt.client, tt.stdin)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if !bytes.Equal(mustRead(t, target), tt.want) {
				t.Error("the target does not hold what it should")
			}
		})
	}
}

// TestRestrictAllowRaw: --allow-raw on the forced command permits what
// TestRestrictOptions refuses.
func TestRestrictAllowRaw(t *testing.T) {
	target := filepath.Join(t.TempDir(), "t.img")
	data := sample(1<<16, 5)
	_, stderr, code := forced(t, []string{"--allow", target, "--allow-raw"}, "blkwrite seek=1 bs=4096 "+target, data)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if got := mustRead(t, target); !bytes.Equal(got[4096:], data) {
		t.Error("raw data with seek= did not land at 4096")
	}
}

// TestAssumeZeroedSays is finding 3: over a target that is not zeroed,
// --assume-zeroed skips the ZERO runs, so it may say only that the stream
// verified, never a plain "verified".
func TestAssumeZeroedSays(t *testing.T) {
	target := filepath.Join(t.TempDir(), "t.img")
	os.WriteFile(target, bytes.Repeat([]byte{0xff}, 1<<16), 0o644)
	data := make([]byte, 1<<16)
	copy(data, "not all zeros")
	s := stream(t, data, frame.WithSourceSize(int64(len(data))))
	_, stderr, code := run(t, s, blkwriteTool(t), "--assume-zeroed", "conv=notrunc", target)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "blkwrite: verified stream; zero runs not written (--assume-zeroed): blake3 ") {
		t.Errorf("stderr %q, want the assumed-zeroed verdict", stderr)
	}
	if strings.Contains(stderr, "blkwrite: verified blake3") {
		t.Errorf("stderr %q says plain verified", stderr)
	}
}

// TestIdleTimeout: a sender that stops sending (its host died) no longer
// holds blkwrite, and the target's lock, until sshd's keepalive: after
// --idle-timeout without a byte blkwrite says the copy is incomplete and
// exits, and the next copy can take the target.
func TestIdleTimeout(t *testing.T) {
	target := filepath.Join(t.TempDir(), "t.img")
	data := sample(3<<16, 6)
	s := stream(t, data, frame.WithSourceSize(int64(len(data))), frame.WithBlockSize(1<<16), frame.WithCodec(frame.CodecNone, 0))
	cmd := exec.Command(blkwriteTool(t), "--allow", target, "--idle-timeout", "0.3")
	cmd.Env = append(os.Environ(), "SSH_ORIGINAL_COMMAND=blkwrite "+target, "BLKPIPE_STATE_DIR="+t.TempDir())
	pw, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pw.Write(s[:len(s)-(1<<16)]) // the sender stops in its last record
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("blkwrite still waits for input after --idle-timeout")
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr %q", err, stderr.String())
	}
	for _, want := range []string{"blkwrite: no input for 300ms (--idle-timeout)", "the copy is incomplete: "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q, want %q", stderr.String(), want)
		}
	}
	if _, stderr, code := forced(t, []string{"--allow", target}, "blkwrite "+target, s); code != 0 {
		t.Errorf("the next copy: exit %d, stderr %q", code, stderr)
	}
}

// TestRestrictNightly runs the README's nightly delta through a write
// key: `blkcat --sums DST` and `blkwrite --resume-point DST` are allowed
// for an allowed DST and nothing else of blkcat is.
func TestRestrictNightly(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	target := filepath.Join(dir, "t.img")
	other := filepath.Join(dir, "other.img")
	snap := filepath.Join(dir, "snap.img")
	old := sample(1<<18, 7)
	os.WriteFile(target, old, 0o644)
	os.WriteFile(other, old, 0o644)
	next := bytes.Clone(old)
	copy(next[8192:], "changed")
	os.WriteFile(snap, next, 0o644)

	want, _, code := run(t, nil, blkcat, "--sums", target)
	if code != 0 {
		t.Fatal("blkcat --sums failed")
	}
	sums, stderr, code := forced(t, []string{"--allow", target}, "blkcat --sums "+target, nil)
	if code != 0 || sums != want {
		t.Fatalf("blkcat --sums through the key: exit %d, %d bytes (want %d), stderr %q", code, len(sums), len(want), stderr)
	}
	cmd := exec.Command(blkcat, "--against", "-", snap)
	cmd.Stdin = strings.NewReader(sums)
	delta, stderr, code := runCmd(t, cmd)
	if code != 0 {
		t.Fatalf("blkcat --against: %d %q", code, stderr)
	}
	if _, stderr, code := forced(t, []string{"--allow", target}, "blkwrite "+target, []byte(delta)); code != 0 {
		t.Fatalf("delta through the key: exit %d, stderr %q", code, stderr)
	}
	if !bytes.Equal(mustRead(t, target), next) {
		t.Fatal("the target is not the snapshot after the delta")
	}
	_, stderr, code = forced(t, []string{"--allow", target}, "blkwrite --resume-point "+target, nil)
	if code != 1 || !strings.Contains(stderr, "no interrupted copy to resume") {
		t.Errorf("--resume-point through the key: exit %d, stderr %q", code, stderr)
	}
	for _, client := range []string{
		"blkcat --sums " + other,
		"blkcat " + target,
		"blkcat --sums " + target + " of=" + other,
		"blkcat --sums if=" + target + " " + other,
		"blkcat --sums " + dir + "/lnk/../t.img",
		"blkcat --sums --against /etc/shadow " + target,
		"blkwrite --resume-point " + other,
	} {
		os.Symlink(t.TempDir(), filepath.Join(dir, "lnk"))
		out, stderr, code := forced(t, []string{"--allow", target}, client, nil)
		if code != 3 || out != "" || !strings.Contains(stderr, "refused") {
			t.Errorf("%q: exit %d, %d bytes out, stderr %q; want refused", client, code, len(out), stderr)
		}
	}
}
