package sshtest_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestRestore follows README's "Restore" over a real sshd: the primary is
// copied to the backup host, damaged, and restored from the backup, once
// as a full copy and once as a delta against what the primary still
// holds. Each restore must give back the original bytes, and blkwrite's
// verified digest (and its --json line) must be the original's, which
// b3sum on the backup host also prints.
func TestRestore(t *testing.T) {
	testutil.NeedRoot(t)
	needFrame(t)
	dir := tools(t)
	const size = 16 << 20
	orig := sshtest.RandomImage(t, size, 11)
	primary := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 11))
	backup, _ := testutil.LoopImage(t, size)
	want := sshtest.BLAKE3(t, orig)
	lab := sshtest.New(t, dir, []string{"backup"})
	env := []string{"P=" + primary, "B=" + backup, "BLKPIPE_STATE_DIR=" + t.TempDir(),
		"REMOTE=BLKPIPE_STATE_DIR=" + t.TempDir()}

	r := lab.Run(lab.Client, `blkcat -q -z lz4 "$P" | $SSH backup "$REMOTE blkwrite -q '$B'"`, time.Minute, env...)
	if r.Code != 0 {
		t.Fatalf("primary to backup: exit %d\n%s", r.Code, r.Stderr)
	}
	r = lab.Run(lab.Client, `$SSH backup "b3sum --no-names '$B'"`, time.Minute, env...)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != want {
		t.Fatalf("b3sum on the backup host: exit %d, %q; want %s\n%s", r.Code, r.Stdout, want, r.Stderr)
	}

	for _, tc := range []struct {
		name, script string
		damage       []int64 // offsets of the 4 KiB blocks overwritten before the restore
	}{
		{"full", `$SSH backup "blkcat -q -z lz4 '$B'" | blkwrite --json "$P"`,
			[]int64{0, 1 << 20, 7<<20 + 4096, size - 4096}},
		{"delta", `blkcat -q --sums "$P" | $SSH backup "blkcat -q --against - -z lz4 '$B'" | blkwrite --json "$P"`,
			[]int64{4096, 3 << 20, 12<<20 + 8192, size - 8192}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			damage(t, primary, tc.damage)
			if n, _ := sshtest.Diff(t, primary, orig, size); n == 0 {
				t.Fatal("the damage did not change the primary")
			}
			r := lab.Run(lab.Client, tc.script, 2*time.Minute, env...)
			if r.Code != 0 {
				t.Fatalf("restore: exit %d\n%s", r.Code, r.Stderr)
			}
			if n, first := sshtest.Diff(t, primary, orig, size); n != 0 {
				t.Fatalf("after the restore the primary differs from the original in %d bytes, the first at %d", n, first)
			}
			if m := verifiedLine.FindStringSubmatch(r.Stderr); m == nil || m[1] != want {
				t.Fatalf("blkwrite did not report the original's digest %s:\n%s", want, r.Stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			var s struct {
				Tool, Result, Path, Digest string
				BytesIn                    int64 `json:"bytes_in"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
				t.Fatalf("blkwrite --json's line: %v\n%s", err, r.Stderr)
			}
			if s.Tool != "blkwrite" || s.Result != "ok" || s.Path != tc.name || s.Digest != want {
				t.Fatalf("blkwrite --json says %+v; want path %s, digest %s", s, tc.name, want)
			}
			if tc.name == "delta" && s.BytesIn > 1<<20 {
				t.Fatalf("the delta restore sent %d bytes for %d damaged blocks", s.BytesIn, len(tc.damage))
			}
		})
	}
}

// damage overwrites the 4 KiB blocks of dev at offs with a pattern.
func damage(t *testing.T, dev string, offs []int64) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := []byte(strings.Repeat("damaged!", 4096/8))
	for _, off := range offs {
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
