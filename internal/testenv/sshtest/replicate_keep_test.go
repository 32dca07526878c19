package sshtest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestReplicateKeep: replicate.sh --keep 2 passes --keep on to blkwrite on
// the backup host (an image on a reflink XFS there), its summary names the
// version kept, and a failed run's FAILED line names the last good one.
func TestReplicateKeep(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.xfs", "unshare")
	needFrame(t)
	dir := tools(t)
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	mnt := testutil.MountFS(t, 512<<20, "mkfs.xfs", "-q", "-m", "reflink=1")
	target := filepath.Join(mnt, "data.img")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// blkwrite on the backup host keeps its state (and snapctl's) in
	// the test's directory, not in /var/lib/blkpipe.
	state := t.TempDir()
	wdir := t.TempDir()
	wrapper, cut := filepath.Join(wdir, "blkwrite-test"), filepath.Join(wdir, "blkwrite-cut")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nBLKPIPE_STATE_DIR="+state+" exec "+filepath.Join(dir, "blkwrite")+` "$@"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The connection dies half way: blkwrite sees the stream end early.
	if err := os.WriteFile(cut, []byte("#!/bin/sh\nhead -c 2000000 | "+wrapper+` "$@"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lab := sshtest.New(t, dir, []string{"backup"})
	src := filepath.Join(t.TempDir(), "src.img")
	replicate := func(t *testing.T, seed byte, extra ...string) sshtest.Result {
		t.Helper()
		if err := os.WriteFile(src, []byte(strings.Repeat(string(rune('a'+seed)), 4<<20)), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--ssh", `"$SSH"`, "--no-snapshot", "--compress", "none", "--blkwrite", wrapper, "--keep", "2"}, extra...)
		return lab.Run(lab.Client, `"$SCRIPT" `+strings.Join(args, " ")+` "$SRC" backup "$T"`, 2*time.Minute,
			"SCRIPT="+script, "SRC="+src, "T="+target)
	}
	r := replicate(t, 0)
	if r.Code != 0 || !strings.HasSuffix(r.Stdout, ", no version kept (no verified copy before)\n") {
		t.Fatalf("first run: exit %d, stdout %q\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	version := regexp.MustCompile(`, kept version (/\S+_snapctl_v\S+)\n$`)
	r = replicate(t, 1)
	m := version.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("second run: exit %d, stdout %q\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if got, err := os.ReadFile(m[1]); err != nil || string(got) != strings.Repeat("a", 4<<20) {
		t.Errorf("the version %s does not hold the copy before the second run (%v)", m[1], err)
	}
	r = replicate(t, 2, "--blkwrite", cut)
	want := "; last good version on backup: " + filepath.Dir(m[1])
	if r.Code != 1 || !strings.Contains(r.Stdout, "replicate: FAILED ") || !strings.Contains(r.Stdout, want) {
		t.Fatalf("cut run: exit %d, stdout %q, want a FAILED line naming a version in %s\nstderr:\n%s", r.Code, r.Stdout, filepath.Dir(m[1]), r.Stderr)
	}
}
