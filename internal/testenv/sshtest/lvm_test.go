package sshtest_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// The LVM path of replicate.sh runs in a QEMU guest (LVM is never touched
// on the host). The guest has no network, so ssh is a stand-in that runs
// the remote command locally; the ssh path itself is what the namespace
// tests cover. Guest disks:
const (
	lvmPV     = "/dev/vda" // the volume group vg, with vg/data
	lvmTarget = "/dev/vdb" // the copy
	lvmData   = 32 << 20
)

func lvmPattern() []byte {
	b := make([]byte, lvmData)
	rng := rand.New(rand.NewChaCha8([32]byte{'l', 'v', 'm'}))
	for i := 0; i < len(b)/2; i += 8 { // random first half, zeros after
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// TestReplicateLVM runs scripts/replicate.sh with an LVM snapshot made by
// snapctl, in a QEMU guest, and checks from the host that the target disk
// holds the volume's data.
func TestReplicateLVM(t *testing.T) {
	if qemutest.InGuest() {
		guestReplicateLVM(t)
		return
	}
	testutil.NeedRoot(t)
	if !has(t, "snapctl") {
		testutil.Skip(t, "feature snapctl not on this branch yet")
	}
	if !hasFrame(t) {
		testutil.Skip(t, "feature blkcat --frame not on this branch yet")
	}
	qemutest.NeedQEMU(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		testutil.Skip(t, "needs bash")
	}
	pv := testutil.SparseFile(t, 128<<20)
	target := testutil.SparseFile(t, lvmData)
	qemutest.RunTest(t, qemutest.Config{
		Disks: []string{pv, target},
		Files: map[string]string{
			"/bin/bash":          bash,
			"/bin/blkcat":        testutil.Tool(t, "blkcat"),
			"/bin/blkwrite":      testutil.Tool(t, "blkwrite"),
			"/bin/snapctl":       testutil.Tool(t, "snapctl"),
			"/test/replicate.sh": filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh"),
		},
	})
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, lvmPattern()) {
		n, first := sshtest.Diff(t, target, writeTemp(t, lvmPattern()), lvmData)
		t.Fatalf("the target disk differs from the volume in %d bytes from %d", n, first)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "want")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func guestReplicateLVM(t *testing.T) {
	sh := func(script string) string {
		t.Helper()
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	sh("pvcreate -q -y " + lvmPV + " && vgcreate -q vg " + lvmPV + " && lvcreate -q -y -L 32M -n data vg")
	f, err := os.OpenFile("/dev/vg/data", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(lvmPattern()); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile("/bin/ssh-local", []byte(testutil.FakeSSH), 0o755); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	cmd := exec.Command("bash", "/test/replicate.sh", "--ssh", "ssh-local", "--compress", "lz4",
		"--snapshot-opt", "--size 16M", "/dev/vg/data", "backup", lvmTarget)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("replicate.sh in %v: %v\nstdout: %s\nstderr: %s", time.Since(start), err, stdout.String(), stderr.String())
	if err != nil {
		t.Fatal("replicate.sh failed")
	}
	want := sshtest.BLAKE3(t, "/dev/vg/data")
	re := regexp.MustCompile(`^replicate: ok /dev/vg/data -> backup:` + lvmTarget + ` via full \(first run\): read [0-9]+ bytes, sent ([0-9]+|\?) bytes, 33554432 bytes verified blake3 ` +
		strings.TrimSpace(want) + ` in [0-9.]+ s, [0-9.]+ MB/s\n$`)
	if !re.MatchString(stdout.String()) {
		t.Fatalf("summary %q does not match %s", stdout.String(), re)
	}
	// The snapshot stays as the base of the next run's changed blocks.
	if lvs := strings.Fields(sh("lvs --noheadings -o lv_name vg")); len(lvs) != 2 || lvs[0] != "data" || !strings.HasPrefix(lvs[1], "data_snapctl_") {
		t.Fatalf("logical volumes after the copy: %q; want data and its snapshot, kept as the base", lvs)
	}
}
