package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestDeltaAssumeZeroedRefused: --assume-zeroed skips ZERO records, which
// in a delta stream replace blocks that held data on the target (the
// previous copy): blkwrite refuses the combination before writing,
// instead of leaving those blocks as they were and printing "verified".
func TestDeltaAssumeZeroedRefused(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	base := randomBytes(64<<10, 31)
	src := append([]byte(nil), base...)
	copy(src[3*4096:4*4096], make([]byte, 4096)) // data → zeros: a ZERO record
	srcPath, dst, sumsPath := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "sums")
	writeFile(t, srcPath, src)
	writeFile(t, dst, base)
	sums, _, code := run(t, nil, blkcat, "-q", "--sums", dst)
	if code != 0 {
		t.Fatal("--sums failed")
	}
	writeFile(t, sumsPath, []byte(sums))
	delta, _, code := run(t, nil, blkcat, "-q", "--against", sumsPath, srcPath)
	if code != 0 {
		t.Fatal("--against failed")
	}
	_, stderr, code := run(t, []byte(delta), blkwrite, "-q", "--assume-zeroed", dst)
	want := fmt.Sprintf("blkwrite: --assume-zeroed does not apply to a delta stream: its ZERO records replace blocks that hold data on '%s'; nothing was written\nTry 'blkwrite --help' for more information.\n", dst)
	if code != 2 || stderr != want {
		t.Errorf("exit %d, stderr %q, want exit 2, %q", code, stderr, want)
	}
	if !bytes.Equal(mustRead(t, dst), base) {
		t.Errorf("the refused delta changed the target")
	}
	// Without it, the same stream lands.
	if _, stderr, code := run(t, []byte(delta), blkwrite, "-q", dst); code != 0 || !bytes.Equal(mustRead(t, dst), src) {
		t.Errorf("delta: exit %d, %q, target holds the source: %v", code, stderr, bytes.Equal(mustRead(t, dst), src))
	}
}

// TestDeltaDropsResumePoint: a delta that lands on a target with an
// interrupted full copy's resume point makes that point stale (the target
// no longer holds what it vouches for). blkwrite --resume-point used to
// print it after the delta verified, and the next night's "resume if
// there is a point" sent the rest of the device, then failed its digest.
func TestDeltaDropsResumePoint(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head", "truncate")
	dir := t.TempDir()
	const size = 8 << 20
	srcPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, srcPath, randomBytes(size, 32))
	env := []string{"BLKPIPE_RESUME_EVERY=1ms"}
	if _, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --frame %s | head -c 5000000 | $BW -q %s", srcPath, dst)); code != 1 {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	if readState(dst) <= 0 {
		t.Fatal("the cut copy recorded no resume point")
	}
	_, stderr, code := sh(t, env, fmt.Sprintf("truncate -s %d %s && $BC -q --sums %s | $BC -q --against - %s | $BW -q %s", size, dst, dst, srcPath, dst))
	if code != 0 || !bytes.Equal(mustRead(t, dst), mustRead(t, srcPath)) {
		t.Fatalf("delta: exit %d: %s", code, stderr)
	}
	out, stderr, code := sh(t, nil, "$BW --resume-point "+dst)
	want := fmt.Sprintf("blkwrite: no interrupted copy to resume on '%s' (no %s)\n", dst,
		filepath.Join(os.Getenv("BLKPIPE_STATE_DIR"), strings.ReplaceAll(dst, "/", "%2F")+".resume"))
	if code != 1 || out != "" || stderr != want {
		t.Errorf("--resume-point after a verified delta: exit %d, stdout %q, stderr %q, want exit 1, %q", code, out, stderr, want)
	}
}

// TestDeltaFirstBlockAnyBlockSize: blkwrite reads a delta's left-out
// blocks in 1 MiB pieces; a block that a piece boundary cuts (every block
// of --sums=2M, some of --sums=1536) was never compared with the sums
// sidecar, so a stale target's first differing block went unnamed, or a
// later block was named as the first.
func TestDeltaFirstBlockAnyBlockSize(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		bs      int
		size    int
		changed []int // target bytes changed after the sums
		first   int   // block to name
	}{
		{"2M", 2 << 20, 8 << 20, []int{2<<20 + 100}, 1},
		// Block 682 straddles 1 MiB; block 1000 does not.
		{"1536", 1536, 3 << 20, []int{682*1536 + 700, 1000*1536 + 3}, 682},
		{"4K", 4096, 3 << 20, []int{300*4096 + 9, 600 * 4096}, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := randomBytes(tc.size, uint64(tc.bs))
			src := append([]byte(nil), base...)
			src[tc.size-1] ^= 1 // the delta carries the last block
			srcPath, dst, sumsPath := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "sums")
			writeFile(t, srcPath, src)
			writeFile(t, dst, base)
			sums, _, code := run(t, nil, blkcat, "-q", fmt.Sprintf("--sums=%d", tc.bs), dst)
			if code != 0 {
				t.Fatal("--sums failed")
			}
			writeFile(t, sumsPath, []byte(sums))
			stale := append([]byte(nil), base...)
			for _, off := range tc.changed {
				stale[off] ^= 0x40
			}
			writeFile(t, dst, stale)
			_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --against %s %s | $BW -q %s", sumsPath, srcPath, dst))
			first := fmt.Sprintf("blkwrite: first differing block: block %d (bytes %d to %d) of '%s' is not what its sums said\n",
				tc.first, tc.first*tc.bs, (tc.first+1)*tc.bs-1, dst)
			if code != 1 || !strings.Contains(stderr, "source digest mismatch") || !strings.Contains(stderr, first) {
				t.Errorf("exit %d, stderr %q, want it to name block %d", code, stderr, tc.first)
			}
		})
	}
}

// TestDeltaCutSaysRunAgain: a delta cut short leaves a target that is
// neither yesterday's copy nor today's, and has no resume point (a delta
// records none). blkwrite said only "do not use the target"; it now says
// how to finish, and doing so verifies.
func TestDeltaCutSaysRunAgain(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	dir := t.TempDir()
	const size = 4 << 20
	base := randomBytes(size, 33)
	src := append([]byte(nil), base...)
	for blk := 0; blk < size/4096; blk += 10 {
		src[blk*4096] ^= 1
	}
	srcPath, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, srcPath, src)
	writeFile(t, dst, base)
	pipeline := fmt.Sprintf("$BC -q --sums %s | $BC -q --against - %s | head -c %%d | $BW -q %s", dst, srcPath, dst)
	_, stderr, code := sh(t, nil, fmt.Sprintf(pipeline, 200000))
	want := fmt.Sprintf("blkwrite: a delta cannot be resumed: run it again, with new sums of '%s', to finish the copy\n", dst)
	if code != 1 || !strings.Contains(stderr, "do not use the target") || !strings.HasSuffix(stderr, want) {
		t.Errorf("cut delta: exit %d, stderr %q, want it to end with %q", code, stderr, want)
	}
	if _, stderr, code := sh(t, nil, fmt.Sprintf(pipeline, 1<<30)); code != 0 || !bytes.Equal(mustRead(t, dst), src) {
		t.Errorf("delta run again: exit %d, %q", code, stderr)
	}
}

// TestDeltaFirstBlockLivePipeline: in the nightly pipeline blkcat --sums
// of the target is still running when blkwrite starts, so the sidecar
// under its final name is the night before's, taken before that night's
// delta. blkwrite compared tonight's left-out blocks with it and named a
// block the previous delta had changed, not the one that changed after
// tonight's sums; it now follows the sidecar being written.
func TestDeltaFirstBlockLivePipeline(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head", "truncate", "dd", "sleep")
	dir := t.TempDir()
	// 128 MiB, mostly holes, summed in 512-byte blocks: 2 MiB of sums,
	// more than the gate below lets through plus the pipe and the
	// writer's buffer hold, so blkcat --sums is still running.
	const size = 128 << 20
	tgt, s1, s2 := filepath.Join(dir, "T"), filepath.Join(dir, "S1"), filepath.Join(dir, "S2")
	poke := func(path string, off int64, what string) string {
		return fmt.Sprintf("printf %s | dd of=%s bs=1 seek=%d conv=notrunc status=none\n", what, path, off)
	}
	script := fmt.Sprintf("truncate -s %d %s\n", size, tgt) +
		fmt.Sprintf("cp --sparse=always %s %s\n", tgt, s1) + poke(s1, 10*4096, "N1") + // last night's change
		fmt.Sprintf("cp --sparse=always %s %s\n", s1, s2) + poke(s2, 4096, "N2") + // tonight's, early: blkwrite starts
		fmt.Sprintf("$BC -q --sums=512 %s | $BC -q --against - %s | $BW -q %s || exit 9\n", tgt, s1, tgt) +
		fmt.Sprintf("cmp -s %s %s || exit 8\n", s1, tgt)
	if _, stderr, code := sh(t, nil, script); code != 0 {
		t.Fatalf("last night's delta: exit %d: %s", code, stderr)
	}
	gate := filepath.Join(dir, "go")
	bwPID := filepath.Join(dir, "bw.pid")
	tmp := filepath.Join(os.Getenv("BLKPIPE_STATE_DIR"), strings.ReplaceAll(tgt, "/", "%2F")+".sums.tmp")
	// Tonight: the gate passes the sums of the first 18 MiB, then holds
	// them until the target changed at 40 MiB, a block the --sums pass
	// has read (its digest is in the temporary sidecar: the pass, still
	// running, has not renamed it) but blkcat --against has not reached.
	script = fmt.Sprintf(`
$BC -q --sums=512 %[1]s | { head -c 300000; until [ -e %[2]s ]; do sleep 0.01; done; cat; } | $BC -q --against - %[3]s |
	{ echo $BASHPID > %[4]s; exec $BW -q %[1]s; } &
n=0; until [ -s %[4]s ] && ls -l /proc/$(cat %[4]s)/fd 2>/dev/null | grep -q -e 'T.sums$' -e 'T.sums.tmp$'; do
	n=$((n+1)); [ $n -lt 3000 ] || { touch %[2]s; echo 'blkwrite opened no sidecar' >&2; exit 7; }; sleep 0.01
done
n=0; until [ $(stat -c %%s %[5]s 2>/dev/null || echo 0) -ge %[7]d ]; do
	n=$((n+1)); [ $n -lt 3000 ] || { touch %[2]s; echo 'blkcat --sums never summed the block' >&2; exit 6; }; sleep 0.01
done
%[6]stouch %[2]s
wait $!`, tgt, gate, s2, bwPID, tmp, poke(tgt, 40<<20, "TAMPER"), 40+8*(40<<20/512+1))
	_, stderr, code := sh(t, nil, script)
	first := fmt.Sprintf("blkwrite: first differing block: block %d (bytes %d to %d) of '%s' is not what its sums said\n", 40<<20/512, 40<<20, 40<<20+511, tgt)
	if code != 1 || !strings.Contains(stderr, "source digest mismatch") || !strings.Contains(stderr, first) {
		t.Errorf("exit %d, stderr %q, want it to name block %d", code, stderr, 40<<20/512)
	}
}
