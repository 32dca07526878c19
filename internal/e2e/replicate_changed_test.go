package e2e

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestReplicateChanged: scripts/replicate.sh run nightly on a reflink
// image: a full copy first, then changed-block deltas, a sums delta when
// the lineage's base went missing, each night's summary saying which path
// ran and why, and the metrics labelled with it. ssh is a local stand-in.
// The target is an image file, then a loop device, onto which the first
// copy is cut short: the next run sends a sums delta against what landed.
func TestReplicateChanged(t *testing.T) {
	testutil.NeedRoot(t)
	t.Run("file", func(t *testing.T) { testReplicateChanged(t, false) })
	t.Run("device", func(t *testing.T) { testReplicateChanged(t, true) })
}

func testReplicateChanged(t *testing.T, device bool) {
	testutil.NeedCmd(t, "bash", "cp", "sha256sum", "flock")
	bin := t.TempDir()
	for _, tool := range []string{"blkcat", "blkwrite", "snapctl", "pvcat"} {
		if err := os.Symlink(testutil.Tool(t, tool), filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(bin, "ssh"), []byte(testutil.FakeSSH))
	os.Chmod(filepath.Join(bin, "ssh"), 0o755)
	mnt := testutil.MountFS(t, 512<<20, "mkfs.xfs", "-q", "-m", "reflink=1")
	img := filepath.Join(mnt, "vm.img")
	writeFile(t, img, append(randomBytes(changedImageSize/2, 3), make([]byte, changedImageSize/2)...))
	target := filepath.Join(t.TempDir(), "backup.img")
	writeFile(t, target, nil)
	if device {
		target, _ = testutil.LoopImage(t, changedImageSize)
	}
	state := t.TempDir()
	metrics := filepath.Join(t.TempDir(), "m.prom")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	replicateCmd := func() *exec.Cmd {
		cmd := exec.Command("bash", script, "--snapshot-opt", "--backend reflink", "--metrics", metrics, img, "backup", target)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "BLKPIPE_STATE_DIR="+state)
		return cmd
	}
	replicate := func(t *testing.T) string {
		t.Helper()
		cmd := replicateCmd()
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("replicate.sh: %v\n%s%s", err, out, errb.String())
		}
		src := mustRead(t, img)
		root := digest.Sum256(src)
		checkCopyBytes(t, src, target)
		line := string(out)
		if !strings.Contains(line, "verified blake3 "+hex.EncodeToString(root[:])) {
			t.Fatalf("summary does not name the image's root %x:\n%s", root, line)
		}
		return line
	}
	// A night whose stream is cut (the backup host's blkwrite gets its
	// first cut bytes, as when the connection drops) fails.
	bw := filepath.Join(bin, "blkwrite")
	cutNight := func(t *testing.T, seed uint64, cut int) {
		t.Helper()
		churn(t, img, seed)
		os.Remove(bw)
		writeFile(t, bw, []byte("#!/bin/bash\nset -o pipefail\ncase \" $* \" in *' --resume-point '*) exec "+testutil.Tool(t, "blkwrite")+" \"$@\" ;; esac\nhead -c "+strconv.Itoa(cut)+" | "+testutil.Tool(t, "blkwrite")+" \"$@\"\n"))
		os.Chmod(bw, 0o755)
		out, err := replicateCmd().Output()
		if err == nil || !strings.Contains(string(out), "FAILED") {
			t.Fatalf("the cut night: %v\n%s", err, out)
		}
		os.Remove(bw)
		if err := os.Symlink(testutil.Tool(t, "blkwrite"), bw); err != nil {
			t.Fatal(err)
		}
	}
	first := `via full \(first run\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3 [0-9a-f]{64} in`
	if device {
		// The first copy cut short: the next run sends a sums delta
		// against what landed, not the whole image again.
		cutNight(t, 100, 20000000)
		first = `via sums-delta \(first copy interrupted at byte [1-9]\d*: only what differs is sent\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3 [0-9a-f]{64} in`
	}
	for i, want := range []string{
		first,
		`via changed-blocks \(extents\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3`,
		`via changed-blocks \(extents\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3`,
	} {
		if i > 0 {
			churn(t, img, uint64(i))
		}
		line := replicate(t)
		t.Logf("night %d: %s", i, strings.TrimSpace(line))
		if !regexp.MustCompile(want).MatchString(line) {
			t.Fatalf("night %d: summary %q does not match %s", i, line, want)
		}
		m := regexp.MustCompile(`read (\d+) bytes, sent (\d+) bytes`).FindStringSubmatch(line)
		if sent, _ := strconv.Atoi(m[2]); i == 0 && device && sent >= changedImageSize/2 {
			t.Errorf("night 0 sent %d bytes after the cut first copy: the whole random half again", sent)
		}
		if i > 0 {
			if len(m[1]) > 7 || len(m[2]) > 7 { // under 10 MB of a 48 MiB image
				t.Errorf("night %d read %s and sent %s bytes", i, m[1], m[2])
			}
		}
	}
	if b, err := os.ReadFile(metrics); err != nil || !strings.Contains(string(b), `path="changed-blocks"`) {
		t.Errorf("metrics lack the path label: %v\n%s", err, b)
	}

	// The next run resumes an interrupted delta, says so, and the night
	// after it is a changed-block delta again.
	cutNight(t, 5, 100000)
	line := replicate(t)
	t.Logf("after a cut night: %s", strings.TrimSpace(line))
	if !regexp.MustCompile(`via changed-blocks \(extents, resumed at byte [1-9][0-9]*\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3`).MatchString(line) {
		t.Fatalf("summary after the cut night: %q", line)
	}
	churn(t, img, 6)
	line = replicate(t)
	if !regexp.MustCompile(`via changed-blocks \(extents\): `).MatchString(line) {
		t.Fatalf("summary of the night after the resumed one: %q", line)
	}
	// Cut again, and the source's first block written before the next
	// run: its snapshot is not the interrupted run's there, so the run
	// sends the whole delta and says why.
	cutNight(t, 7, 100000)
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("written after the cut"), 0)
	f.Close()
	line = replicate(t)
	t.Logf("after a cut night and a write: %s", strings.TrimSpace(line))
	if !regexp.MustCompile(`via changed-blocks \(extents, not resumed: resume point does not match '[^']+': the target's first \d+ bytes are not this snapshot's .*nothing was sent\): `).MatchString(line) {
		t.Fatalf("summary after a cut night and a write to the source: %q", line)
	}

	// The base removed by hand: the night falls back to a sums delta and
	// says why.
	bases, _ := filepath.Glob(filepath.Join(mnt, ".snapctl", "vm*"))
	for _, b := range bases {
		os.Remove(b)
	}
	churn(t, img, 9)
	line = replicate(t)
	if !regexp.MustCompile(`via sums-delta \(lineage replicate-[0-9a-f]+: base not usable: base \S+ is missing\)`).MatchString(line) {
		t.Fatalf("summary after the base was removed: %q", line)
	}
}

// checkCopyBytes checks that target holds src.
func checkCopyBytes(t *testing.T, src []byte, target string) {
	t.Helper()
	got := mustRead(t, target)
	if len(got) < len(src) || string(got[:len(src)]) != string(src) {
		t.Fatalf("target differs from the source at byte %d", testutil.FirstDiff(got, src))
	}
}
