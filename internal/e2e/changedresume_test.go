package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// changedToken matches the resume point of a changed-block delta:
// STREAMID:OFFSET:SIZE:SAMPLE:BASEROOT:APPLIED.
var changedToken = regexp.MustCompile(`^[0-9a-f]{32}:([0-9]+):([0-9]+):[0-9a-f]{16}:[0-9a-f]{64}:[0-9a-f]{16}$`)

// changedStream writes night n's whole changed-block stream to a file and
// returns its path and length.
func changedStream(t *testing.T, n changedNight) (string, int64) {
	t.Helper()
	stream := filepath.Join(t.TempDir(), "stream")
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s %s > %s", n.base, n.next, stream)); code != 0 {
		t.Fatalf("blkcat: exit %d\n%s", code, stderr)
	}
	return stream, wcC(t, stream)
}

// resumePoint is blkwrite --resume-point of night n's target, checked to
// be a changed-block delta's, and its offset.
func resumePoint(t *testing.T, n changedNight) (string, int64) {
	t.Helper()
	out, stderr, code := sh(t, n.env, "$BW --resume-point "+n.target)
	tok := strings.TrimSpace(out)
	if code != 0 || !changedToken.MatchString(tok) {
		t.Fatalf("--resume-point: exit %d, %q\n%s", code, tok, stderr)
	}
	st, err := state.ParseToken(tok)
	if err != nil || !st.Changed || st.Offset <= 0 || st.Offset >= changedImageSize {
		t.Fatalf("resume point %q: %+v, %v", tok, st, err)
	}
	return tok, st.Offset
}

// resumeAndNextNight resumes night n's delta with tok, checks the target
// is the snapshot and blkwrite verified its root, that the resumed stream
// was smaller than the whole one (size full), and then that the next
// night's changed-block delta applies and verifies from the map kept by
// the resumed run.
func resumeAndNextNight(t *testing.T, n changedNight, tok string, full int64, fromMap bool) {
	t.Helper()
	resumed := filepath.Join(t.TempDir(), "resumed")
	_, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s --resume %s %s | tee %s | $BW %s", n.base, tok, n.next, resumed, n.target))
	if code != 0 || !strings.Contains(stderr, "blkcat: resumed the changed-block delta at byte ") {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	if read := strings.Contains(stderr, "verifying by reading all"); fromMap && read {
		t.Errorf("the resumed delta was not verified from the map:\n%s", stderr)
	} else if read {
		t.Logf("verified by reading the target back: %s", stderr)
	}
	checkCopy(t, stderr, n.next, n.target)
	// The block sums kept for the next sums delta are the target's.
	kept, _, code1 := sh(t, n.env, "$BC --sums "+n.target)
	reread, _, code2 := sh(t, n.env, "$BC --sums --sums-reread "+n.target)
	if code1 != 0 || code2 != 0 || kept != reread {
		t.Errorf("kept block sums after the resume differ from the target's (exit %d, %d)", code1, code2)
	}
	if got := wcC(t, resumed); got >= full {
		t.Errorf("the resumed stream is %d bytes, the whole delta %d", got, full)
	}
	if _, _, code := sh(t, n.env, "$BW --resume-point "+n.target); code == 0 {
		t.Error("a resume point is left after the resumed delta verified")
	}

	churn(t, n.p.live, 99)
	third := n.p.snap(t, "s2")
	_, stderr, code = sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s %s | $BW %s", n.next, third, n.target))
	if code != 0 {
		t.Fatalf("the next night: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "verifying by reading") {
		t.Errorf("the next night did not verify from the map the resumed run kept:\n%s", stderr)
	}
	checkCopy(t, stderr, third, n.target)
}

// TestChangedResume: a changed-block delta cut at 10 %, 50 % and 99 % of
// its stream leaves a resume point; blkcat --changed-from --resume sends
// only the rest, blkwrite verifies the whole new root, and the next night
// works from the copy record and map the resumed run kept.
func TestChangedResume(t *testing.T) {
	testutil.NeedCmd(t, "head", "tee", "b3sum")
	for _, pct := range []int64{10, 50, 99} {
		t.Run(fmt.Sprintf("cut at %d%%", pct), func(t *testing.T) {
			n := nightAfterFullCopy(t, 31)
			stream, size := changedStream(t, n)
			_, stderr, code := sh(t, n.env, fmt.Sprintf("head -c %d %s | $BW %s", size*pct/100, stream, n.target))
			if code == 0 || !strings.Contains(stderr, "truncated") || !strings.Contains(stderr, "--changed-from BASE --resume") {
				t.Fatalf("cut stream: exit %d\n%s", code, stderr)
			}
			tok, _ := resumePoint(t, n)
			resumeAndNextNight(t, n, tok, size, true)
		})
	}
}

// TestChangedResumeTwice: a resumed changed-block delta cut short again
// resumes from its own later point, the blocks and leaves of both parts
// counted.
func TestChangedResumeTwice(t *testing.T) {
	testutil.NeedCmd(t, "head", "tee", "b3sum")
	n := nightAfterFullCopy(t, 35)
	stream, size := changedStream(t, n)
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("head -c %d %s | $BW %s", size*3/10, stream, n.target)); code == 0 {
		t.Fatalf("cut stream verified:\n%s", stderr)
	}
	tok, first := resumePoint(t, n)
	resumed := filepath.Join(t.TempDir(), "resumed")
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s --resume %s %s > %s", n.base, tok, n.next, resumed)); code != 0 {
		t.Fatalf("blkcat --resume: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("head -c %d %s | $BW %s", wcC(t, resumed)/2, resumed, n.target)); code == 0 {
		t.Fatalf("cut resumed stream verified:\n%s", stderr)
	}
	tok2, second := resumePoint(t, n)
	if second <= first || tok2[:32] != tok[:32] {
		t.Fatalf("second point %s after first %s", tok2, tok)
	}
	resumeAndNextNight(t, n, tok2, size, true)
}

// TestChangedResumeKilled: blkwrite killed (SIGKILL) while it applies a
// changed-block delta resumes from the last point it recorded.
func TestChangedResumeKilled(t *testing.T) {
	testutil.NeedCmd(t, "tee", "b3sum")
	n := nightAfterFullCopy(t, 32)
	stream, size := changedStream(t, n)
	b, err := os.ReadFile(stream)
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdin, _ := startWriter(t, append(n.env, "BLKPIPE_RESUME_EVERY=0s"), "-q", n.target) // fail_test.go
	// Most of the stream, but not its END: blkwrite cannot finish.
	if _, err := stdin.Write(b[:len(b)*2/3]); err != nil {
		t.Fatal(err)
	}
	dir := state.Dir(n.stateDir)
	deadline := time.Now().Add(30 * time.Second)
	var point int64
	for time.Now().Before(deadline) {
		if tok, err := dir.Load(n.target); err == nil && tok.Offset > 0 {
			point = tok.Offset
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if point == 0 {
		t.Fatal("blkwrite recorded no resume point in 30 s")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	tok, _ := resumePoint(t, n)
	// Verified from the map if blkwrite wrote nothing after its last
	// point, else by reading the target back: either way the whole root.
	resumeAndNextNight(t, n, tok, size, false)
}

// TestChangedResumeRefused: resume points of another base, another
// snapshot or another stream, a forged one, and a target written since
// are refused before anything is written; the target's bytes stay as
// the cut left them, and the real resume point still works.
func TestChangedResumeRefused(t *testing.T) {
	testutil.NeedCmd(t, "head", "tee", "b3sum")
	n := nightAfterFullCopy(t, 33)
	stream, size := changedStream(t, n)
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("head -c %d %s | $BW %s", size/2, stream, n.target)); code == 0 {
		t.Fatalf("cut stream verified:\n%s", stderr)
	}
	tok, _ := resumePoint(t, n)
	f := strings.Split(tok, ":")
	cut := mustRead(t, n.target)
	churn(t, n.p.live, 77)
	other := n.p.snap(t, "other")
	forge := func(i int, v string) string {
		g := append([]string(nil), f...)
		g[i] = v
		return strings.Join(g, ":")
	}
	flip := func(s string) string {
		if s[0] == '0' {
			return "1" + s[1:]
		}
		return "0" + s[1:]
	}
	for _, c := range []struct {
		name, base, tok, snap, want string
	}{
		{"another base", n.next, tok, n.next, "blkcat: resume point is of a delta against a base with blake3 " + f[4] + ", but base '" + n.next + "' has blake3 "},
		{"another snapshot", n.base, tok, other, "blkcat: resume point does not match '" + other + "': "},
		{"forged applied sum", n.base, forge(5, flip(f[5])), n.next, "blkcat: resume point does not match '" + n.next + "': the blocks the interrupted delta wrote before byte " + f[1]},
		{"a full copy's token", n.base, strings.Join(f[:4], ":"), n.next, "blkcat: resume point '" + strings.Join(f[:4], ":") + "' is of a full copy"},
		{"another stream", n.base, forge(0, flip(f[0])), n.next, "blkwrite: resume stream refused: it continues stream " + flip(f[0])},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s --resume %s %s | $BW -q %s", c.base, c.tok, c.snap, n.target))
			if code != 1 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "nothing was") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, c.want)
			}
			if !bytes.Equal(mustRead(t, n.target), cut) {
				t.Fatal("a refused resume changed the target")
			}
		})
	}

	// The target written since (its first block, which the sample reads).
	written := append([]byte(nil), cut...)
	copy(written, "written since")
	writeFile(t, n.target, written)
	_, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s --resume %s %s | $BW -q %s", n.base, tok, n.next, n.target))
	if code != 1 || !strings.Contains(stderr, "blkwrite: resume stream refused: '"+n.target+"' changed since the interrupted copy") {
		t.Errorf("target written since: exit %d\n%s", code, stderr)
	}
	if !bytes.Equal(mustRead(t, n.target), written) {
		t.Fatal("a refused resume changed the target")
	}
	// Restored, the target's Stamp still says it was written: the
	// resumed delta is verified by reading it back.
	writeFile(t, n.target, cut)
	resumeAndNextNight(t, n, tok, size, false)
}

// TestChangedResumeWrittenSince: a target written after the cut where no
// check before writing looks (outside the sampled blocks, in a leaf the
// delta does not touch) is not verified from the map: the resumed delta
// reads it back and fails, never saying "verified".
func TestChangedResumeWrittenSince(t *testing.T) {
	testutil.NeedCmd(t, "head")
	n := nightAfterFullCopy(t, 34)
	stream, size := changedStream(t, n)
	if _, stderr, code := sh(t, n.env, fmt.Sprintf("head -c %d %s | $BW %s", size/2, stream, n.target)); code == 0 {
		t.Fatalf("cut stream verified:\n%s", stderr)
	}
	tok, _ := resumePoint(t, n)
	f, err := os.OpenFile(n.target, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(changedImageSize - 3*4096)
	if !bytes.Equal(mustRead(t, n.base)[at:at+4096], mustRead(t, n.next)[at:at+4096]) {
		t.Fatal("the block written behind the delta's back is one it changes: pick another")
	}
	if _, err := f.WriteAt([]byte("written behind the delta's back"), at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, stderr, code := sh(t, n.env, fmt.Sprintf("$BC -q --changed-from %s --resume %s %s | $BW %s", n.base, tok, n.next, n.target))
	if code == 0 || strings.Contains(stderr, "blkwrite: verified") || !strings.Contains(stderr, "verifying by reading all") || !strings.Contains(stderr, "digest mismatch") {
		t.Fatalf("resume onto a target written since: exit %d\n%s", code, stderr)
	}
}
