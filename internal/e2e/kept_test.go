package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// These tests cover what blkwrite keeps beside a verified copy (issue
// #16): the copy record (--last), the digest map a delta is verified
// from, and the block sums blkcat --sums answers from.

// b3 is the BLAKE3 hex digest of b, as b3sum prints it.
func b3(b []byte) string {
	d := digest.Sum256(b)
	return hex.EncodeToString(d[:])
}

// stateDir is the tests' state directory (TestMain's).
func stateDir() state.Dir { return state.Dir(os.Getenv("BLKPIPE_STATE_DIR")) }

// changeBlocks overwrites n random 4 KiB blocks of b (seeded) and returns
// the indices of the 64 KiB leaves they touch.
func changeBlocks(b []byte, n int, seed uint64) map[int64]bool {
	rng := rand.New(rand.NewPCG(seed, 2))
	leaves := map[int64]bool{}
	blocks := len(b) / 4096
	for _, blk := range rng.Perm(blocks)[:n] {
		copy(b[blk*4096:], randomBytes(4096, uint64(blk)+seed<<32))
		leaves[int64(blk*4096/digest.LeafSize)] = true
	}
	return leaves
}

// sectorsRead is the sectors-read field of /sys/block/loopN/stat.
func sectorsRead(t *testing.T, dev string) int64 {
	t.Helper()
	b, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fullCopy(t *testing.T, src, dst string) {
	t.Helper()
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --frame %s | $BW -q %s", src, dst))
	if code != 0 || !strings.Contains(stderr, "verified blake3 ") {
		t.Fatalf("full copy to %s: exit %d: %s", dst, code, stderr)
	}
}

var lastRE = regexp.MustCompile(`^verified blake3 ([0-9a-f]{64}) size (\d+) at (\S+Z) stream ([0-9a-f]{32}) target (\S+)\n$`)

// TestLastAfterFullCopy: a full copy to a loop device keeps the record,
// the map and the sums; --last prints the record, --json too; a raw write
// removes them, and a file target changed since is refused.
func TestLastAfterFullCopy(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "dd")
	const size = 8<<20 + 1000
	src := sample(size, 31)
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, src)
	dev, _ := testutil.LoopImage(t, 9<<20)
	fullCopy(t, srcPath, dev)
	dir := stateDir()
	for _, p := range []string{dir.CopyPath(dev), dir.MapPath(dev), dir.SumsPath(dev)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not kept: %v", err)
		}
	}
	out, stderr, code := sh(t, nil, "$BW --last "+dev)
	m := lastRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("--last: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if m[1] != b3(src) || m[2] != strconv.Itoa(size) || m[5] != dev {
		t.Errorf("--last: %q, want digest %s size %d target %s", out, b3(src), size, dev)
	}
	out, _, code = sh(t, nil, "$BW --last --json "+dev)
	var j struct {
		Verified     bool
		Alg, Digest  string
		Size         int64
		Target       string
		Map, Sums    bool
		Time, Stream string
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || !j.Verified || j.Digest != b3(src) || j.Size != size || !j.Map || !j.Sums {
		t.Errorf("--last --json: exit %d, %q (%v)", code, out, err)
	}

	// A raw write is not verified: the record goes before its first byte.
	_, stderr, code = sh(t, nil, fmt.Sprintf("head -c 4096 /dev/zero | $BW -q --raw %s", dev))
	if code != 0 {
		t.Fatalf("raw write: exit %d: %s", code, stderr)
	}
	_, stderr, code = sh(t, nil, "$BW --last "+dev)
	if code != 1 || !strings.Contains(stderr, "no verified copy is recorded for '"+dev+"'") {
		t.Errorf("--last after a raw write: exit %d: %s", code, stderr)
	}

	// A file written since: its mtime no longer matches.
	file := filepath.Join(t.TempDir(), "dst")
	fullCopy(t, srcPath, file)
	if _, _, code := sh(t, nil, "$BW --last "+file); code != 0 {
		t.Fatalf("--last of a file: exit %d", code)
	}
	sh(t, nil, "printf x | dd of="+file+" bs=1 seek=5000 conv=notrunc status=none")
	out, stderr, code = sh(t, nil, "$BW --last "+file)
	if code != 1 || out != "" || !strings.Contains(stderr, "the target was changed since") {
		t.Errorf("--last of a changed file: exit %d, %q, %s", code, out, stderr)
	}
}

// TestDeltaFromMapReadsTouchedLeaves: a delta of 1 % of the 4 KiB blocks of
// a 64 MiB loop device is verified from the map: the device serves at most
// 1.2x the bytes of the 64 KiB leaves the changes touch (counted in
// /sys/block/loopN/stat, its buffers flushed first), for blkcat --sums (from
// the kept sums) and blkwrite together; the device holds the source; the
// kept sums are what reading the device gives.
func TestDeltaFromMapReadsTouchedLeaves(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "blockdev", "cmp")
	const size = 64 << 20
	src := randomBytes(size, 41)
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, src)
	dev, _ := testutil.LoopImage(t, size)
	fullCopy(t, srcPath, dev)

	touched := changeBlocks(src, size/4096/100, 42)
	writeFile(t, srcPath, src)
	testutil.Run(t, "blockdev", "--flushbufs", dev)
	before := sectorsRead(t, dev)
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", dev, srcPath, dev))
	read := (sectorsRead(t, dev) - before) * 512
	if code != 0 || !strings.Contains(stderr, "blkwrite: verified blake3 "+b3(src)) {
		t.Fatalf("delta: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "no valid") {
		t.Errorf("delta did not use the kept state: %s", stderr)
	}
	if got := mustRead(t, dev); b3(got) != b3(src) {
		t.Fatal("the device does not hold the source")
	}
	leafBytes := int64(len(touched)) * digest.LeafSize
	t.Logf("read %d bytes from the device for %d touched leaves (%d bytes): %.3fx", read, len(touched), leafBytes, float64(read)/float64(leafBytes))
	if read > leafBytes*12/10 {
		t.Errorf("read %d bytes from the device, more than 1.2x the %d bytes of the %d touched leaves", read, leafBytes, len(touched))
	}

	// The kept sums, updated by the delta, are the device's.
	d := t.TempDir()
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --sums %s > %s/kept && $BC -q --sums --sums-reread %s > %s/read && cmp %s/kept %s/read", dev, d, dev, d, d, d))
	if code != 0 || stderr != "" {
		t.Errorf("kept sums differ from reading the device: exit %d: %s", code, stderr)
	}
}

// TestDeltaMapNotTrusted: a damaged, foreign, truncated or stale map (or a
// target written behind blkwrite's back, even with its mtime set back) is
// never trusted: blkwrite says so and reads the whole target, blkcat
// --sums reads it too, and the delta still verifies.
func TestDeltaMapNotTrusted(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "dd", "touch", "truncate")
	const size = 4<<20 + 1000
	base := randomBytes(size, 51)
	dir := stateDir()
	other := filepath.Join(t.TempDir(), "other")
	otherSrc := filepath.Join(t.TempDir(), "othersrc")
	writeFile(t, otherSrc, randomBytes(size, 52))
	fullCopy(t, otherSrc, other)
	for _, tc := range []struct {
		name, reason string
		damage       func(t *testing.T, dst string)
	}{
		{"flipped-byte", "the map is damaged", func(t *testing.T, dst string) {
			b := mustRead(t, dir.MapPath(dst))
			b[200] ^= 1
			writeFile(t, dir.MapPath(dst), b)
		}},
		{"other-target", "the map is of another copy", func(t *testing.T, dst string) {
			writeFile(t, dir.MapPath(dst), mustRead(t, dir.MapPath(other)))
		}},
		{"truncated", "the map is damaged", func(t *testing.T, dst string) {
			b := mustRead(t, dir.MapPath(dst))
			writeFile(t, dir.MapPath(dst), b[:len(b)/2])
		}},
		{"missing", "no digest map", func(t *testing.T, dst string) {
			os.Remove(dir.MapPath(dst))
		}},
		{"written-since", "the target was changed since", func(t *testing.T, dst string) {
			sh(t, nil, "printf x | dd of="+dst+" bs=1 seek=70000 conv=notrunc status=none")
		}},
		{"written-same-mtime", "the target was changed since", func(t *testing.T, dst string) {
			// The mtime set back, as touch -r does: the ctime the
			// record keeps still moved.
			sh(t, nil, fmt.Sprintf("touch -r %s %s.ref && printf x | dd of=%s bs=1 seek=%d conv=notrunc status=none && touch -r %s.ref %s", dst, dst, dst, size-10, dst, dst))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			srcPath, dst := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst")
			src := append([]byte(nil), base...)
			writeFile(t, srcPath, src)
			fullCopy(t, srcPath, dst)
			tc.damage(t, dst)
			changeBlocks(src, 10, 53)
			writeFile(t, srcPath, src)
			_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", dst, srcPath, dst))
			want := fmt.Sprintf("blkwrite: no valid digest map for '%s' (", dst)
			if code != 0 || !strings.Contains(stderr, "verified blake3 "+b3(src)) || !strings.Contains(stderr, want) || !strings.Contains(stderr, tc.reason) ||
				!strings.Contains(stderr, "): verifying by reading the whole target") {
				t.Fatalf("exit %d, want the fallback (%s) and verified:\n%s", code, tc.reason, stderr)
			}
			if !strings.Contains(stderr, fmt.Sprintf("blkcat: no valid kept block sums for '%s' (", dst)) {
				t.Errorf("blkcat --sums does not say it reads the target:\n%s", stderr)
			}
			if b3(mustRead(t, dst)) != b3(src) {
				t.Fatal("the target does not hold the source")
			}
			// The fallback kept a new, valid state.
			_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", dst, srcPath, dst))
			if code != 0 || strings.Contains(stderr, "no valid") {
				t.Errorf("after the fallback: exit %d: %s", code, stderr)
			}
		})
	}
}

// TestDeltaFromMapWrongEnd: a delta made against sums that are not the
// target's, onto a target whose map is valid, ends with a digest that the
// updated map does not give: refused, never verified, the record gone.
func TestDeltaFromMapWrongEnd(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash")
	const size = 4 << 20
	tmp := t.TempDir()
	srcPath, dst, liar := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst"), filepath.Join(tmp, "liar")
	src := randomBytes(size, 61)
	writeFile(t, srcPath, src)
	fullCopy(t, srcPath, dst)
	changeBlocks(src, 20, 62)
	writeFile(t, srcPath, src)
	// Sums of the new source with one block changed: the delta sends
	// that block only, not the 20 the target lacks.
	l := append([]byte(nil), src...)
	l[12345] ^= 1
	writeFile(t, liar, l)
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", liar, srcPath, dst))
	if code != 1 || strings.Contains(stderr, "verified") || strings.Contains(stderr, "no valid") ||
		!strings.Contains(stderr, "source digest mismatch") || !strings.Contains(stderr, "the blocks the delta stream left out are not on") {
		t.Fatalf("exit %d, want refused from the map:\n%s", code, stderr)
	}
	if _, stderr, code := sh(t, nil, "$BW --last "+dst); code != 1 || !strings.Contains(stderr, "no verified copy") {
		t.Errorf("--last after a refused delta: exit %d: %s", code, stderr)
	}
}

// TestKeptAfterResumeAndSHA256: a resumed copy keeps a valid state (its
// prefix hashed from the target as the Reader reads it back), so blkcat
// --sums answers from it; a SHA-256 stream is recorded without a map.
func TestKeptAfterResumeAndSHA256(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head", "cmp")
	const size = 6<<20 + 4096*3 + 100
	src := sample(size, 71)
	tmp := t.TempDir()
	srcPath, dst := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst")
	writeFile(t, srcPath, src)
	if _, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --frame %s | head -c 3000000 | $BW -q %s", srcPath, dst)); code != 1 {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	if _, stderr, code := sh(t, nil, "$BW --last "+dst); code != 1 || !strings.Contains(stderr, "no verified copy") {
		t.Fatalf("--last after a cut copy: exit %d: %s", code, stderr)
	}
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --resume \"$($BW --resume-point %s)\" %s | $BW -q %s", dst, srcPath, dst))
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	out, _, code := sh(t, nil, "$BW --last "+dst)
	if m := lastRE.FindStringSubmatch(out); code != 0 || m == nil || m[1] != b3(src) {
		t.Fatalf("--last after the resume: exit %d: %q", code, out)
	}
	_, stderr, code = sh(t, nil, fmt.Sprintf("$BC -q --sums %s > %s/kept && $BC -q --sums --sums-reread %s > %s/read && cmp %s/kept %s/read", dst, tmp, dst, tmp, tmp, tmp))
	if code != 0 || stderr != "" {
		t.Errorf("kept sums after a resume: exit %d: %s", code, stderr)
	}

	stream := filepath.Join(tmp, "sha.blkp")
	var b bytes.Buffer
	w, err := frame.NewWriter(&b, frame.WithDigest(frame.DigestSHA256), frame.WithSourceSize(size))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(src)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, stream, b.Bytes())
	if _, stderr, code := sh(t, nil, fmt.Sprintf("$BW -q %s < %s", dst, stream)); code != 0 || !strings.Contains(stderr, "verified sha256") {
		t.Fatalf("sha256 stream: exit %d: %s", code, stderr)
	}
	out, _, code = sh(t, nil, "$BW --last "+dst)
	if code != 0 || !strings.HasPrefix(out, "verified sha256 "+sha256File(t, srcPath)+" size ") {
		t.Errorf("--last after a sha256 copy: exit %d: %q", code, out)
	}
	if _, err := os.Stat(stateDir().MapPath(dst)); !os.IsNotExist(err) {
		t.Errorf("a sha256 copy kept a digest map: %v", err)
	}
}

// TestKeptDeviceWrittenBehind: a device written by anything but blkwrite
// after its verified copy (dd here, a few bytes in one leaf the sampled
// leaves would likely miss) is no longer the device of the record: the
// sectors-written count it records moved. --last says so, and the nightly
// delta, which would otherwise trust sums and map that no longer describe
// the device, reads it and still leaves it equal to the source.
func TestKeptDeviceWrittenBehind(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "dd")
	const size = 16 << 20
	src := randomBytes(size, 43)
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, src)
	dev, _ := testutil.LoopImage(t, size)
	fullCopy(t, srcPath, dev)
	if _, stderr, code := sh(t, nil, "$BW --last "+dev); code != 0 {
		t.Fatalf("--last after the copy: exit %d: %s", code, stderr)
	}
	// The source changes in one block; the device "changes back" to an
	// older state in the same block, behind blkwrite's back.
	copy(src[5<<20:], "the night's change")
	writeFile(t, srcPath, src)
	sh(t, nil, "printf 'something else' | dd of="+dev+" bs=1 seek=$((5<<20)) conv=notrunc oflag=sync status=none")
	out, stderr, code := sh(t, nil, "$BW --last "+dev)
	if code != 1 || out != "" || !strings.Contains(stderr, "the target was changed since") {
		t.Fatalf("--last of a device written behind the record: exit %d, %q, %s", code, out, stderr)
	}
	_, stderr, code = sh(t, nil, "$BC --sums "+dev+" | $BC --against - -z lz4 "+srcPath+" | $BW "+dev)
	if code != 0 || !strings.Contains(stderr, "verified blake3") {
		t.Fatalf("nightly delta: exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	if i := testutil.FirstDiff(got, src); i >= 0 {
		t.Fatalf("the device differs from the source from byte %d", i)
	}
}

// TestDeltaFromMapFlippedBehind: a byte of the target flipped behind
// blkwrite's back (in the loop device's image, which moves neither the
// device's stamp nor its map), in a leaf the nightly delta touches but in
// a block the delta does not send, is caught by the read-back of that
// leaf: the delta is refused from the map, never verified, with AIO reads
// and with preads (BLKPIPE_AIO=0).
func TestDeltaFromMapFlippedBehind(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "blockdev")
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"aio", nil},
		{"pread", []string{"BLKPIPE_AIO=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// blkcat --sums and blkwrite each rehash a few random
			// leaves of the target before they trust its map: if
			// they pick the flipped one, the map is not used and the
			// read-back not tested, so the test starts again.
			for try := 0; ; try++ {
				if flippedBehind(t, tc.env, uint64(try)) {
					return
				}
				if try == 4 {
					t.Fatal("the sampled leaves caught the flipped byte in every try: the read-back was never tested")
				}
			}
		})
	}
}

// flippedBehind runs the test once and reports false when the map was
// not used because a sampled leaf showed the flip.
func flippedBehind(t *testing.T, env []string, seed uint64) bool {
	t.Helper()
	const size = 32 << 20
	old := randomBytes(size, 81+seed)
	srcPath := filepath.Join(t.TempDir(), "src")
	writeFile(t, srcPath, old)
	dev, image := testutil.LoopImage(t, size)
	fullCopy(t, srcPath, dev)

	src := bytes.Clone(old)
	touched := changeBlocks(src, 40, 82+seed)
	writeFile(t, srcPath, src)
	// The first touched leaf with a block the delta leaves as it is.
	flip := int64(-1)
	for leaf := int64(0); leaf < size/digest.LeafSize && flip < 0; leaf++ {
		if !touched[leaf] {
			continue
		}
		for b := leaf * digest.LeafSize; b < (leaf+1)*digest.LeafSize; b += 4096 {
			if bytes.Equal(old[b:b+4096], src[b:b+4096]) {
				flip = b + 1000
				break
			}
		}
	}
	if flip < 0 {
		t.Fatal("no touched leaf has an unchanged block")
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{old[flip] ^ 0x40}, flip); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "blockdev", "--flushbufs", dev)

	_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | $BW -q %s", dev, srcPath, dev))
	if strings.Contains(stderr, "is not what the map says") {
		t.Logf("a sampled leaf showed the flip at byte %d; again", flip)
		return false
	}
	if code != 1 || strings.Contains(stderr, "verified") || strings.Contains(stderr, "no valid") ||
		!strings.Contains(stderr, "the target's digest map with the delta's blocks hashes to") {
		t.Fatalf("byte %d of the target flipped behind blkwrite: exit %d, want refused from the map:\n%s", flip, code, stderr)
	}
	if _, stderr, code := sh(t, nil, "$BW --last "+dev); code != 1 || !strings.Contains(stderr, "no verified copy") {
		t.Errorf("--last after the refused delta: exit %d: %s", code, stderr)
	}
	return true
}
