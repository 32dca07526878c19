package e2e

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestReplicateChanged: scripts/replicate.sh run nightly on a reflink
// image: a full copy first, then changed-block deltas, a sums delta when
// the lineage's base went missing, each night's summary saying which path
// ran and why, and the metrics labelled with it. ssh is a local stand-in.
func TestReplicateChanged(t *testing.T) {
	testutil.NeedRoot(t)
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
	state := t.TempDir()
	metrics := filepath.Join(t.TempDir(), "m.prom")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	replicate := func(t *testing.T) string {
		t.Helper()
		cmd := exec.Command("bash", script, "--snapshot-opt", "--backend reflink", "--metrics", metrics, img, "backup", target)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "BLKPIPE_STATE_DIR="+state)
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
	for i, want := range []string{
		`via full \(first run\): read \d+ bytes, sent \d+ bytes, 50335744 bytes verified blake3 [0-9a-f]{64} in`,
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
		if i > 0 {
			m := regexp.MustCompile(`read (\d+) bytes, sent (\d+) bytes`).FindStringSubmatch(line)
			if len(m[1]) > 7 || len(m[2]) > 7 { // under 10 MB of a 48 MiB image
				t.Errorf("night %d read %s and sent %s bytes", i, m[1], m[2])
			}
		}
	}
	if b, err := os.ReadFile(metrics); err != nil || !strings.Contains(string(b), `path="changed-blocks"`) {
		t.Errorf("metrics lack the path label: %v\n%s", err, b)
	}
	// The base removed by hand: the night falls back to a sums delta and
	// says why.
	bases, _ := filepath.Glob(filepath.Join(mnt, ".snapctl", "vm*"))
	for _, b := range bases {
		os.Remove(b)
	}
	churn(t, img, 9)
	line := replicate(t)
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
