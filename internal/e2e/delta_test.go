package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestMain keeps blkwrite's resume state of every test in a temporary
// directory, never in /var/lib/blkpipe.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "blkpipe-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("BLKPIPE_STATE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	testutil.RemoveTools()
	os.Exit(code)
}

// sh runs a bash pipeline with pipefail and returns its stdout, stderr
// and exit code. $BC and $BW are blkcat and blkwrite.
func sh(t *testing.T, env []string, script string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -o pipefail\n"+script)
	cmd.Env = append(append(os.Environ(),
		"BC="+testutil.Tool(t, "blkcat"), "BW="+testutil.Tool(t, "blkwrite")), env...)
	return runCmd(t, cmd)
}

// wcC is wc -c of a file, as the issue asks the sizes be measured.
func wcC(t *testing.T, path string) int64 {
	t.Helper()
	out, _, code := sh(t, nil, "wc -c < "+path)
	if code != 0 {
		t.Fatalf("wc -c %s failed", path)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	out, _, code := sh(t, nil, "sha256sum < "+path)
	if code != 0 {
		t.Fatalf("sha256sum %s failed", path)
	}
	return strings.Fields(out)[0]
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	rand.NewChaCha8(key).Read(b)
	return b
}

// nearZero returns 4 KiB blocks that are almost all zeros: the patterns
// that a zero test or a short hash can get wrong (bdsync issue #39 lost a
// block whose only nonzero byte was its last).
func nearZero() [][]byte {
	var out [][]byte
	for _, pos := range []int{4095, 0, 2048, 4088, 7} {
		for _, v := range []byte{1, 0x80, 0xFF} {
			b := make([]byte, 4096)
			b[pos] = v
			out = append(out, b)
		}
	}
	b := make([]byte, 4096)
	b[4094], b[4095] = 1, 1
	return append(out, b, make([]byte, 4096))
}

// TestDeltaSync: a 256 MiB image with 0 %, 1 % and 10 % of its 4 KiB
// blocks changed at random crosses as a delta: the target ends identical,
// verified, the data stream costs at most 1.1× the changed blocks plus a
// few KiB, and the sums at most 0.5 % of the image.
func TestDeltaSync(t *testing.T) {
	testutil.NeedCmd(t, "bash", "wc", "cmp", "sha256sum", "tee")
	const size = 256 << 20
	const blocks = size / 4096
	dir := t.TempDir()
	base := randomBytes(size, 1)
	near := nearZero()
	for _, tc := range []struct {
		name    string
		percent float64
		z       string
	}{
		{"0%", 0, ""},
		{"1%", 1, ""},
		{"10%-lz4", 10, "-z lz4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(dir, "dst")
			writeFile(t, dst, base)
			src := append([]byte(nil), base...)
			rng := rand.New(rand.NewPCG(uint64(tc.percent*10), 3))
			changed := int(blocks * tc.percent / 100)
			for i, blk := range rng.Perm(blocks)[:changed] {
				b := src[blk*4096 : (blk+1)*4096]
				switch {
				case i < len(near):
					copy(b, near[i]) // near-zero and zero blocks among the changes
				default:
					copy(b, randomBytes(4096, rng.Uint64()))
				}
			}
			srcPath := filepath.Join(dir, "src")
			writeFile(t, srcPath, src)
			want := digest.Sum256(src)
			src = nil

			sumsF, dataF := filepath.Join(dir, "sums"), filepath.Join(dir, "data")
			_, stderr, code := sh(t, nil, fmt.Sprintf(
				`$BC -q --sums %s | tee %s | $BC -q --against - %s %s | tee %s | $BW %s`,
				dst, sumsF, tc.z, srcPath, dataF, dst))
			if code != 0 {
				t.Fatalf("delta pipeline exit %d:\n%s", code, stderr)
			}
			if !strings.HasSuffix(stderr, "blkwrite: verified blake3 "+hex.EncodeToString(want[:])+"\n") {
				t.Errorf("blkwrite did not verify the source's digest:\n%s", stderr)
			}
			if _, _, code := sh(t, nil, "cmp "+srcPath+" "+dst); code != 0 {
				t.Fatalf("target differs from the source")
			}
			sumsN, dataN := wcC(t, sumsF), wcC(t, dataF)
			changedBytes := int64(changed) * 4096
			t.Logf("%d changed blocks (%d bytes): data stream %d bytes (%.3f×), sums %d bytes (%.3f %% of the image)",
				changed, changedBytes, dataN, float64(dataN)/float64(max(changedBytes, 1)), sumsN, 100*float64(sumsN)/size)
			if limit := changedBytes*11/10 + 4096; dataN > limit {
				t.Errorf("data stream %d bytes, want ≤ %d (1.1× %d changed bytes + 4 KiB)", dataN, limit, changedBytes)
			}
			if sumsN > size/200 {
				t.Errorf("sums %d bytes, want ≤ 0.5 %% of %d", sumsN, size)
			}
		})
	}
}

// TestDeltaNearZero: blocks that are zero but for a byte, zero blocks over
// data and data over zero blocks all cross, in a delta and a full copy.
func TestDeltaNearZero(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	dir := t.TempDir()
	near := nearZero()
	var src, dst bytes.Buffer
	for i, b := range near {
		// Each pattern over a zero block, over the same pattern with another
		// last byte, and over data; and zeros over the pattern.
		src.Write(b)
		dst.Write(make([]byte, 4096))
		src.Write(b)
		o := append([]byte(nil), b...)
		o[4095] ^= 2
		dst.Write(o)
		src.Write(b)
		dst.Write(randomBytes(4096, uint64(i)))
		src.Write(make([]byte, 4096))
		dst.Write(b)
	}
	src.WriteString("tail") // a short last block
	dst.Write(make([]byte, 4))
	srcPath, dstPath := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, srcPath, src.Bytes())
	for _, mode := range []string{"--against <($BC -q --sums " + dstPath + ")", "--frame", "-z lz4 --against <($BC -q --sums " + dstPath + ")"} {
		writeFile(t, dstPath, dst.Bytes())
		_, stderr, code := sh(t, nil, "$BC -q "+mode+" "+srcPath+" | $BW -q "+dstPath)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr)
		}
		if got := mustRead(t, dstPath); !bytes.Equal(got, src.Bytes()) {
			for i := 0; i < len(got); i += 4096 {
				if !bytes.Equal(got[i:min(i+4096, len(got))], src.Bytes()[i:min(i+4096, src.Len())]) {
					t.Fatalf("%s: block %d differs", mode, i/4096)
				}
			}
			t.Fatalf("%s: target differs", mode)
		}
	}
}

// readState returns the offset recorded in target's resume state, or -1.
func readState(target string) int64 {
	b, err := os.ReadFile(filepath.Join(os.Getenv("BLKPIPE_STATE_DIR"), strings.ReplaceAll(target, "/", "%2F")+".resume"))
	if err != nil {
		return -1
	}
	f := strings.Split(strings.TrimSpace(string(b)), ":")
	if len(f) != 4 {
		return -1
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n
}

// TestResume: a full copy whose writer is killed half way carries on from
// the recorded point, sends no more than what was missing plus a block,
// and verifies; resume streams from another copy are refused.
func TestResume(t *testing.T) {
	testutil.NeedCmd(t, "bash", "wc", "cmp")
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	const size = 32<<20 + 12345
	dir := t.TempDir()
	srcPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := sample(size, 11)
	writeFile(t, srcPath, data)
	stream, _, code := run(t, nil, blkcat, "-q", "--frame", srcPath)
	if code != 0 {
		t.Fatal("blkcat --frame failed")
	}

	// Feed half the stream, wait until blkwrite recorded progress near
	// there, and kill it (SIGKILL: no chance to save anything more).
	cmd := exec.Command(blkwrite, "-q", dst)
	cmd.Env = append(os.Environ(), "BLKPIPE_RESUME_EVERY=0s")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	half := len(stream) / 2
	if _, err := stdin.Write([]byte(stream[:half])); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for readState(dst) < int64(half)-4<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := readState(dst); got < int64(half)-4<<20 {
		t.Fatalf("blkwrite recorded %d bytes done after 30 s, want %d", got, int64(half)-4<<20)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	point := readState(dst)
	if point <= 0 || point > size/2+1<<20 {
		t.Fatalf("resume state offset %d after killing the writer half way through %d bytes", point, size)
	}

	tok, stderr, code := run(t, nil, blkwrite, "--resume-point", dst)
	tok = strings.TrimSpace(tok)
	if code != 0 || !regexp.MustCompile(fmt.Sprintf("^[0-9a-f]{32}:%d:%d:[0-9a-f]{16}$", point, size)).MatchString(tok) {
		t.Fatalf("--resume-point: exit %d, %q %s", code, tok, stderr)
	}

	// Refused: a token for another source size (blkcat), and a stream with
	// another id (blkwrite), before anything is written.
	other := filepath.Join(dir, "other")
	writeFile(t, other, data[:size-1])
	_, stderr, code = run(t, nil, blkcat, "--resume", tok, other)
	if wantMsg := fmt.Sprintf("blkcat: resume point is for a %d-byte source, '%s' is %d bytes: it belongs to another copy; nothing was sent\n", size, other, size-1); code != 1 || stderr != wantMsg {
		t.Errorf("resume of another source: exit %d, stderr %q, want %q", code, stderr, wantMsg)
	}
	before := sha256File(t, dst)
	// Another stream id: its first byte changed (a random id may start
	// with 00 already, 1 time in 256).
	prefix := "00"
	if strings.HasPrefix(tok, prefix) {
		prefix = "ff"
	}
	forged := prefix + tok[2:]
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --resume %s %s | $BW -q %s", forged, srcPath, dst))
	if code != 1 || !strings.Contains(stderr, "blkwrite: resume stream refused: it continues stream "+prefix) || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("resume with another stream id: exit %d, stderr %q", code, stderr)
	}
	if sha256File(t, dst) != before {
		t.Errorf("a refused resume stream changed the target")
	}

	sent := filepath.Join(dir, "sent")
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC --resume \"$($BW --resume-point %s)\" %s | tee %s | $BW %s", dst, srcPath, sent, dst))
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	sum := digest.Sum256(data)
	if !strings.HasSuffix(stderr, "blkwrite: verified blake3 "+hex.EncodeToString(sum[:])+"\n") {
		t.Errorf("resumed copy not verified:\n%s", stderr)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Fatal("resumed target differs from the source")
	}
	missing := int64(size) - point
	if n := wcC(t, sent); n > missing+1<<20 {
		t.Errorf("resume sent %d bytes, want ≤ %d missing + one 1 MiB block", n, missing)
	} else {
		t.Logf("resumed at %d: sent %d bytes for %d missing", point, n, missing)
	}
	if _, stderr, code := run(t, nil, blkwrite, "--resume-point", dst); code != 1 || !strings.HasPrefix(stderr, "blkwrite: no interrupted copy to resume on") {
		t.Errorf("state left after a verified copy: exit %d %q", code, stderr)
	}
}

// TestResumeAfterCut: a dropped connection (the stream ends early) records
// the exact point reached, and a second resume after a second cut works too.
func TestResumeAfterCut(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	dir := t.TempDir()
	srcPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := sample(9<<20+100, 5)
	writeFile(t, srcPath, data)
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --frame %s | head -c 3000000 | $BW -q %s", srcPath, dst))
	if code != 1 || !strings.Contains(stderr, "blkwrite: resume point saved at byte ") {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --resume \"$($BW --resume-point %s)\" %s | head -c 3000000 | $BW -q %s", dst, srcPath, dst))
	if code != 1 || !strings.Contains(stderr, "blkwrite: resume point saved at byte ") {
		t.Fatalf("cut resume: exit %d: %s", code, stderr)
	}
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q -z lz4 --resume \"$($BW --resume-point %s)\" %s | $BW -q %s", dst, srcPath, dst))
	if code != 0 || !bytes.Equal(mustRead(t, dst), data) {
		t.Fatalf("second resume: exit %d: %s", code, stderr)
	}
}

// TestResumeOtherSource: a resume point taken from a copy of one source is
// refused by blkcat for another source of the same size before anything is
// sent (its sample of the copied part differs), and blkwrite, given nothing,
// leaves the target as it was; the right source then resumes. A token
// without the sample (from an older blkwrite) is still taken.
func TestResumeOtherSource(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	dir := t.TempDir()
	srcPath, otherPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "other"), filepath.Join(dir, "dst")
	data := sample(9<<20+100, 7)
	other := append([]byte(nil), data...)
	copy(other, sample(4096, 8)) // differs in the first block, always sampled
	writeFile(t, srcPath, data)
	writeFile(t, otherPath, other)
	if _, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --frame %s | head -c 5000000 | $BW -q %s", srcPath, dst)); code != 1 {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	tokOut, _, code := sh(t, nil, "$BW --resume-point "+dst)
	tok := strings.TrimSpace(tokOut)
	if code != 0 || strings.Count(tok, ":") != 3 {
		t.Fatalf("--resume-point: exit %d, %q", code, tok)
	}
	before := sha256File(t, dst)
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --resume %s %s | $BW -q %s", tok, otherPath, dst))
	point := readState(dst)
	want := fmt.Sprintf("blkcat: resume point does not match '%s': the target's first %d bytes are not this source's (sampled blocks differ; another source, or it changed since the interrupted copy): make a full copy; nothing was sent\n", otherPath, point)
	if point <= 0 {
		t.Fatalf("no resume state with a sample after the cut copy: %d", point)
	}
	// blkwrite then sees an empty input and leaves the target alone; the
	// two tools' lines may come in either order.
	empty := fmt.Sprintf("blkwrite: 'standard input' is empty (did the sender fail?): '%s' was left as it was", dst)
	if code != 1 || !strings.Contains("\n"+stderr, "\n"+want) || !strings.Contains(stderr, empty) || strings.Count(stderr, "\n") != 2 {
		t.Errorf("resume from another source: exit %d, stderr %q, want the two lines %q and %q", code, stderr, want, empty)
	}
	if sha256File(t, dst) != before {
		t.Error("the refused resume changed the target")
	}
	// The token without its sample, as an older blkwrite printed it.
	legacy := tok[:strings.LastIndex(tok, ":")]
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --resume %s %s | $BW -q %s", legacy, srcPath, dst))
	if code != 0 || !strings.Contains(stderr, "verified blake3") || !bytes.Equal(mustRead(t, dst), data) {
		t.Fatalf("resume with the right source: exit %d: %s", code, stderr)
	}
}

// TestDeltaReject: sums or delta streams that are truncated, reordered or
// for another size are refused, and never reported as a verified copy.
func TestDeltaReject(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	const size = 1<<20 + 512
	base := randomBytes(size, 9)
	src := append([]byte(nil), base...)
	for _, blk := range []int{3, 40, 41, 200} {
		copy(src[blk*4096:], randomBytes(4096, uint64(blk)))
	}
	srcPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, srcPath, src)
	writeFile(t, dst, base)
	sumsOut, _, code := run(t, nil, blkcat, "-q", "--sums", dst)
	if code != 0 {
		t.Fatal("--sums failed")
	}
	sums := []byte(sumsOut)
	sumsPath := filepath.Join(dir, "sums")

	// Sums streams: each is refused by blkcat --against, whose output
	// blkwrite then refuses as well.
	swapped := append([]byte(nil), sums...)
	copy(swapped[40+8*5:], sums[40+8*6:40+8*7])
	copy(swapped[40+8*6:], sums[40+8*5:40+8*6])
	smallPath := filepath.Join(dir, "small")
	writeFile(t, smallPath, base[:1<<20])
	smaller, _, _ := run(t, nil, blkcat, "-q", "--sums", smallPath)
	newer := append([]byte(nil), sums...)
	newer[8] = 2 // the version, from a backup host running another build
	for _, tc := range []struct {
		name, sums, want string
	}{
		{"truncated", string(sums[:len(sums)-100]), "blkcat: block sums 'standard input': block-sums stream truncated: "},
		{"no trailer", string(sums[:len(sums)-16]), "blkcat: block sums 'standard input': block-sums stream truncated: "},
		{"reordered", string(swapped), "blkcat: block sums 'standard input': block-sums checksum mismatch: stream CRC-32C "},
		{"smaller target", smaller, fmt.Sprintf("blkcat: source is larger than the target: '%s' is %d bytes, the block sums 'standard input' are of a 1048576-byte target; nothing was sent", srcPath, size)},
		{"not sums", "hello", "blkcat: block sums 'standard input': not a block-sums stream (bad magic)"},
		{"empty", "", "blkcat: block sums 'standard input' are empty (did blkcat --sums on the other side fail?); nothing was sent\n"},
		{"newer version", string(newer), "blkcat: block sums 'standard input': unsupported block-sums version 2 (this blkpipe reads 1): the blkcat --sums that wrote them and this blkcat are different blkpipe versions (see their --version); install the same version on both hosts\n"},
	} {
		t.Run("sums "+tc.name, func(t *testing.T) {
			writeFile(t, sumsPath, []byte(tc.sums))
			out, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --against - %s < %s > %s.delta", srcPath, sumsPath, sumsPath))
			if code != 1 || !strings.HasPrefix(stderr, tc.want) {
				t.Errorf("blkcat: exit %d, stderr %q, want prefix %q", code, stderr, tc.want)
			}
			_ = out
			made := mustRead(t, sumsPath+".delta")
			if len(made) == 0 {
				return // refused before sending anything
			}
			_, stderr, code = run(t, made, blkwrite, "-q", filepath.Join(dir, "scratch"))
			if code == 0 || strings.Contains(stderr, "verified") {
				t.Errorf("blkwrite accepted what blkcat made of bad sums: exit %d %q", code, stderr)
			}
		})
	}

	// Delta streams.
	writeFile(t, sumsPath, sums)
	delta, _, code := run(t, nil, blkcat, "-q", "--against", sumsPath, srcPath)
	if code != 0 {
		t.Fatal("--against failed")
	}
	// Records: 64-byte header, then DATA records of 32+4096 bytes, END.
	recs := []byte(delta[64:])
	if len(recs) != 4*(32+4096)+80 {
		t.Fatalf("delta stream has %d record bytes, want 4 DATA records and END", len(recs))
	}
	reordered := []byte(delta[:64])
	reordered = append(reordered, recs[4128:2*4128]...)
	reordered = append(reordered, recs[:4128]...)
	reordered = append(reordered, recs[2*4128:]...)
	short := filepath.Join(dir, "short")
	writeFile(t, short, base[:size-4096])
	for _, tc := range []struct {
		name, stream, target, want string
	}{
		{"truncated", delta[:len(delta)-90], dst, "stream truncated"},
		{"reordered", string(reordered), dst, "records out of order"},
		{"smaller target", delta, short, fmt.Sprintf("blkwrite: target is smaller than the source: '%s' holds %d bytes, the delta stream's source is %d bytes; nothing was written", short, size-4096, size)},
	} {
		t.Run("delta "+tc.name, func(t *testing.T) {
			before := sha256File(t, tc.target)
			_, stderr, code := run(t, []byte(tc.stream), blkwrite, "-q", tc.target)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "verified") {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
			if tc.name == "smaller target" && sha256File(t, tc.target) != before {
				t.Errorf("a refused stream changed the target")
			}
		})
	}

	// A target that changed after its sums were taken: the delta leaves out
	// a block the target no longer holds, and blkwrite's check fails.
	tampered := append([]byte(nil), base...)
	tampered[100*4096+5] ^= 1
	writeFile(t, dst, tampered)
	_, stderr, code := run(t, []byte(delta), blkwrite, "-q", dst)
	first := fmt.Sprintf("blkwrite: first differing block: block 100 (bytes 409600 to 413695) of '%s' is not what its sums said\n", dst)
	if code != 1 || !strings.Contains(stderr, "source digest mismatch") || !strings.Contains(stderr, first) {
		t.Errorf("stale target: exit %d, stderr %q, want it to name block 100", code, stderr)
	}
	// The same in the last, short block (512 bytes).
	tamperedTail := append([]byte(nil), base...)
	tamperedTail[size-1] ^= 1
	writeFile(t, dst, tamperedTail)
	_, stderr, code = run(t, []byte(delta), blkwrite, "-q", dst)
	first = fmt.Sprintf("blkwrite: first differing block: block 256 (bytes 1048576 to 1049087) of '%s' is not what its sums said\n", dst)
	if code != 1 || !strings.Contains(stderr, "source digest mismatch") || !strings.Contains(stderr, first) {
		t.Errorf("stale short last block: exit %d, stderr %q, want it to name block 256", code, stderr)
	}
	// --no-verify skips that check.
	writeFile(t, dst, tampered)
	if _, stderr, code := run(t, []byte(delta), blkwrite, "--no-verify", dst); code != 0 || !strings.Contains(stderr, "NOT verified") {
		t.Errorf("--no-verify: exit %d, stderr %q", code, stderr)
	}
}

func TestDeltaUsage(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	for _, tc := range []struct {
		bin  string
		args []string
		want string
	}{
		{blkcat, []string{"--sums", "--frame", "/dev/null"}, "blkcat: --sums writes block digests, not a framed stream: --frame and -z do not apply"},
		{blkcat, []string{"--sums=1000", "/dev/null"}, "blkcat: invalid --sums block size '1000' (a multiple of 512 from 512 to 16M, e.g. 4K)"},
		{blkcat, []string{"--sums", "--against", "x", "/dev/null"}, "blkcat: --sums, --against, --resume and --changed-from cannot be combined"},
		{blkcat, []string{"--against", "x"}, "blkcat: --sums, --against and --resume need SRC to be a device or file (not standard input)"},
		{blkcat, []string{"--sums", "skip=1", "/dev/null"}, "blkcat: --sums, --against and --resume read all of SRC: skip=, count=, seek= and conv=sync do not apply"},
		{blkcat, []string{"--resume", "nope", "/dev/null"}, "blkcat: invalid --resume token 'nope': want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point"},
		// "$(ssh backup blkwrite --resume-point DST)" with nothing to
		// resume: not a plain raw copy.
		{blkcat, []string{"--resume", "", "/dev/null"}, "blkcat: invalid --resume token '': want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point (it prints none when there is nothing to resume)"},
		{blkcat, []string{"--resume=", "/dev/null"}, "blkcat: invalid --resume token '': want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point (it prints none when there is nothing to resume)"},
		{blkcat, []string{"--against", "", "/dev/null"}, "blkcat: --against needs SUMS: a file, or - for standard input"},
		{blkwrite, []string{"--sums", "x"}, "blkwrite: unknown option '--sums'"},
		{blkcat, []string{"--resume-point", "x"}, "blkcat: unknown option '--resume-point'"},
		{blkwrite, []string{"--resume-point"}, "blkwrite: --resume-point needs the target (blkwrite --resume-point DST)"},
	} {
		_, stderr, code := run(t, nil, tc.bin, tc.args...)
		// Every usage error is followed by the Try line (cli.PrintError).
		if tool := filepath.Base(tc.bin); code != 2 || stderr != tc.want+"\nTry '"+tool+" --help' for more information.\n" {
			t.Errorf("%s %q: exit %d, stderr %q, want %q", filepath.Base(tc.bin), tc.args, code, stderr, tc.want)
		}
	}
}

// TestDeltaDevice: a delta and a resume onto a loop device larger than the
// source, written with O_DIRECT: the device ends holding the source, its
// tail untouched, and both tools say the tail is left alone.
func TestDeltaDevice(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "head")
	const size = 6<<20 + 512*3
	base := sample(size, 21)
	img := testutil.SparseFile(t, 8<<20)
	writeFile(t, img, append(append([]byte(nil), base...), bytes.Repeat([]byte{0xEE}, 8<<20-size)...))
	dev := testutil.LoopDevice(t, img)
	src := append([]byte(nil), base...)
	for i, blk := range []int{0, 5, 6, 700, 1500, size / 4096} {
		b := src[blk*4096 : min(size, blk*4096+4096)]
		copy(b, randomBytes(len(b), uint64(i)))
	}
	copy(src[100*4096:], make([]byte, 4096)) // data → zeros
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, src)
	check := func(what string) {
		t.Helper()
		got := mustRead(t, dev)
		if !bytes.Equal(got[:size], src) {
			t.Fatalf("%s: device does not hold the source", what)
		}
		if !bytes.Equal(got[size:], bytes.Repeat([]byte{0xEE}, len(got)-size)) {
			t.Fatalf("%s: the device's tail beyond the source was changed", what)
		}
	}
	sent := filepath.Join(t.TempDir(), "sent")
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --sums %s | $BC --against - %s | tee %s | $BW %s", dev, srcPath, sent, dev))
	if code != 0 {
		t.Fatalf("delta: exit %d: %s", code, stderr)
	}
	note := fmt.Sprintf("note: the target is %d bytes, larger than '%s' (%d bytes); its last %d bytes are left as they are", 8<<20, srcPath, size, 8<<20-size)
	if !strings.Contains(stderr, "blkcat: "+note) || !strings.Contains(stderr, fmt.Sprintf("blkwrite: note: '%s' is %d bytes, larger than the source (%d bytes); its last %d bytes are left as they are", dev, 8<<20, size, 8<<20-size)) {
		t.Errorf("the larger target is not noted:\n%s", stderr)
	}
	check("delta")
	if n := wcC(t, sent); n > 7*(4096+32)+32+64+80 {
		t.Errorf("delta of 6 changed blocks and a zeroed one sent %d bytes", n)
	}

	// A cut full copy, then a resume, onto the device.
	writeFile(t, srcPath, base)
	src = base
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --frame %s | head -c 3000000 | $BW -q %s", srcPath, dev))
	if code != 1 {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --resume \"$($BW --resume-point %s)\" %s | $BW -q %s", dev, srcPath, dev))
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	check("resume")
}
