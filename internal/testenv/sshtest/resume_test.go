package sshtest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestResumeAfterDroppedConnection drops the connection of a framed copy
// (the client's ssh killed) while the remote blkwrite waits for more, its
// stderr going to the same ssh session, as in `blkcat --frame SRC | ssh
// backup blkwrite DST`. blkwrite must still record the exact point that
// landed (it used to die of SIGPIPE writing its first message to the dead
// session, before recording it), and the resumed copy over ssh verifies.
func TestResumeAfterDroppedConnection(t *testing.T) {
	testutil.NeedRoot(t)
	needFrame(t)
	dir := tools(t)
	const size = 16 << 20
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 7))
	dst, dstImage := testutil.LoopImage(t, size)
	lab := sshtest.New(t, dir, []string{"backup"})
	backup := lab.Host("backup")
	state := t.TempDir()
	// Only the final save counts: none on the way (BLKPIPE_RESUME_EVERY).
	remote := fmt.Sprintf("BLKPIPE_STATE_DIR=%s BLKPIPE_RESUME_EVERY=1h", state)

	// 3 whole DATA records of 1 MiB (32-byte header each) after the 64-byte
	// stream header, and part of the 4th; then the sender stalls.
	const landed = 3 << 20
	cut := 64 + 3*(32+1<<20) + 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := lab.Bash(ctx, lab.Client,
		`{ blkcat -q --frame "$SRC" | head -c $CUT; sleep 120; } | $SSH backup "$REMOTE blkwrite '$DST'"`,
		"SRC="+src, "DST="+dst, "CUT="+fmt.Sprint(cut), "REMOTE="+remote)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	ssh, err := sshtest.WaitDescendant(cmd.Process.Pid, "ssh", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitRemote(t, backup.PID(), "blkwrite")
	waitSame(t, src, dstImage, landed-4096, 4096)
	syscall.Kill(ssh.PID, syscall.SIGKILL)
	// The remote blkwrite ends (EOF on its input) rather than lingering.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		alive := false
		for _, p := range sshtest.Descendants(backup.PID()) {
			alive = alive || p.Comm == "blkwrite"
		}
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote blkwrite still runs 30 s after its connection was killed")
		}
	}
	cancel()

	r := lab.Run(lab.Client, `$SSH backup "$REMOTE blkwrite --resume-point '$DST'"`, time.Minute, "DST="+dst, "REMOTE="+remote)
	m := regexp.MustCompile(`^[0-9a-f]{32}:(\d+):16777216:[0-9a-f]+\n$`).FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil || m[1] != fmt.Sprint(landed) {
		t.Fatalf("resume point: exit %d, stdout %q, stderr %q; want the point %d", r.Code, r.Stdout, r.Stderr, landed)
	}
	r = lab.Run(lab.Client, `blkcat --resume "$TOKEN" --frame "$SRC" | $SSH backup "$REMOTE blkwrite '$DST'"`, 2*time.Minute,
		"SRC="+src, "DST="+dst, "REMOTE="+remote, "TOKEN="+strings.TrimSpace(r.Stdout))
	want := sshtest.BLAKE3(t, src)
	if v := verifiedLine.FindStringSubmatch(r.Stderr); r.Code != 0 || v == nil || v[1] != want {
		t.Fatalf("resumed copy: exit %d, want verified %s:\n%s", r.Code, want, r.Stderr)
	}
	if !strings.Contains(r.Stderr, fmt.Sprintf("blkcat: resuming at byte %d of %d", landed, size)) {
		t.Errorf("blkcat did not say where it resumed:\n%s", r.Stderr)
	}
	if got := sshtest.BLAKE3(t, dst); got != want {
		t.Fatalf("target sha256 %s after the resumed copy, source %s", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "*.resume")); len(left) != 0 {
		t.Errorf("resume state left after a verified copy: %v", left)
	}
}

// waitSame waits up to 30 s until the n bytes at off of the target's
// backing image equal those of src.
func waitSame(t *testing.T, src, image string, off int64, n int) {
	t.Helper()
	want, got := make([]byte, n), make([]byte, n)
	read := func(path string, b []byte) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.ReadAt(b, off)
	}
	read(src, want)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		read(image, got)
		if bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bytes %d to %d of the source did not land on %s in 30 s", off, off+int64(n), image)
		}
	}
}

// TestResumeHintOverSSH: when the sender of `blkcat --frame SRC | ssh
// backup blkwrite DST` fails mid-stream, the remote blkwrite's hint comes
// back to the sending host, where it is run: it must go through ssh (run
// there as printed before, it looked for the resume point on the sending
// host and would write that host's DST), and it works as printed.
func TestResumeHintOverSSH(t *testing.T) {
	testutil.NeedRoot(t)
	needFrame(t)
	dir := tools(t)
	const size = 8 << 20
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 8))
	dst, _ := testutil.LoopImage(t, size)
	lab := sshtest.New(t, dir, []string{"backup"})
	remote := "BLKPIPE_STATE_DIR=" + t.TempDir()
	cut := 64 + 2*(32+1<<20) + 1000 // the sender dies in the 3rd record
	r := lab.Run(lab.Client, `blkcat -q --frame "$SRC" | head -c $CUT | $SSH backup "$REMOTE blkwrite -q '$DST'"`, time.Minute,
		"SRC="+src, "DST="+dst, "CUT="+fmt.Sprint(cut), "REMOTE="+remote)
	want := fmt.Sprintf(`blkwrite: resume point saved at byte %d of %d: blkcat --resume "$(ssh HOST blkwrite --resume-point %s)" SRC | ssh HOST blkwrite %s`+"\n",
		2<<20, size, dst, dst)
	if r.Code != 1 || !strings.HasSuffix(r.Stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1, ending %q", r.Code, r.Stderr, want)
	}
	// The hint as printed, with HOST and SRC filled in; ssh carries the
	// state directory as the test's remote environment.
	hint := strings.TrimSuffix(want[strings.Index(want, "blkcat --resume"):], "\n")
	hint = strings.NewReplacer("ssh HOST blkwrite", `$SSH backup $REMOTE blkwrite`, " SRC ", ` "$SRC" `).Replace(hint)
	r = lab.Run(lab.Client, hint, time.Minute, "SRC="+src, "REMOTE="+remote)
	if m := verifiedLine.FindStringSubmatch(r.Stderr); r.Code != 0 || m == nil || m[1] != sshtest.BLAKE3(t, src) {
		t.Fatalf("%s: exit %d, not verified:\n%s", hint, r.Code, r.Stderr)
	}
}
