package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/changes"
	"github.com/blkpipe/blkpipe/internal/snapshot"
)

// TestKeepBase: snapctl run --keep-base keeps a lineage of reflink
// snapshots: the first run has no $BASE and keeps its snapshot; the next
// gets it as $BASE, and once its CMD succeeded its own snapshot replaces
// it; a failed run keeps the base and drops its snapshot; a base removed
// by hand is reported and not used; gc keeps the base; changes lists what
// was written between two snapshots.
func TestKeepBase(t *testing.T) {
	mnt, img, _ := setup(t, "xfs")
	out := filepath.Join(t.TempDir(), "env")
	runOnce := func(t *testing.T, exit string) (code int, snap, base, note, stderr string) {
		t.Helper()
		code, _, stderr = snapctl(t, "run", "--keep-base", "vm", img, "--", "sh", "-c",
			`printf '%s\n%s\n%s\n' "$SNAP" "$BASE" "$BASE_NOTE" > `+out+`; exit `+exit)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("CMD did not run: %v\n%s", err, stderr)
		}
		f := strings.Split(string(b), "\n")
		return code, f[0], f[1], f[2], stderr
	}
	code, s1, base, note, stderr := runOnce(t, "0")
	if code != 0 || base != "" || !strings.Contains(note, "first run of lineage vm") {
		t.Fatalf("first run: exit %d, BASE %q, BASE_NOTE %q\n%s", code, base, note, stderr)
	}
	if _, err := os.Stat(s1); err != nil {
		t.Fatalf("the first snapshot was not kept as the base: %v", err)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("x", 4096)), 64<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, s2, base, _, stderr := runOnce(t, "0")
	if code != 0 || base != s1 {
		t.Fatalf("second run: exit %d, BASE %q, want %q\n%s", code, base, s1, stderr)
	}
	if _, err := os.Stat(s1); !os.IsNotExist(err) {
		t.Errorf("the previous base %s is still there: %v", s1, err)
	}
	if _, err := os.Stat(s2); err != nil {
		t.Fatalf("the second snapshot is not the base: %v", err)
	}

	code, s3, base, _, _ := runOnce(t, "3")
	if code != 3 || base != s2 {
		t.Fatalf("failed run: exit %d, BASE %q, want 3 and %q", code, base, s2)
	}
	if _, err := os.Stat(s3); !os.IsNotExist(err) {
		t.Errorf("the failed run's snapshot %s is still there", s3)
	}
	if _, err := os.Stat(s2); err != nil {
		t.Fatalf("a failed run removed the base: %v", err)
	}

	code, lst, _ := snapctl(t, "list")
	if code != 0 || !strings.Contains(lst, "BASE OF") || !strings.Contains(lst, s2) || !strings.Contains(lst[strings.Index(lst, s2):], " vm") {
		t.Errorf("list does not show %s as the base of vm:\n%s", s2, lst)
	}
	code, _, stderr = snapctl(t, "gc", "--older-than", "0s")
	if _, err := os.Stat(s2); code != 0 || err != nil || !strings.Contains(stderr, "base of lineage vm") {
		t.Errorf("gc: exit %d, base %v:\n%s", code, err, stderr)
	}

	// changes between the base and a new clone lists the written block.
	f, err = os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("y", 4096)), 128<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	clone := filepath.Join(mnt, "clone.img")
	if code, _, stderr := snapctl(t, "create", "--backend", "reflink", "--name", "clone", img); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	ls, _ := filepath.Glob(filepath.Join(mnt, ".snapctl", "clone*"))
	if len(ls) == 1 {
		clone = ls[0]
	}
	code, list, stderr := snapctl(t, "changes", s2, clone)
	if code != 0 {
		t.Fatalf("changes: exit %d: %s", code, stderr)
	}
	l, err := changes.ReadList(strings.NewReader(list))
	if err != nil || !l.Covers(changes.Range{Off: 128 << 10, Len: 4096}) || l.Bytes() > 64<<10 || !strings.Contains(stderr, "from extents") {
		t.Errorf("changes after a 4 KiB write at 128 KiB: %v %v\n%s", l, err, stderr)
	}
	snapctl(t, "remove", clone)
	// A snapshot older than the next verified copy, for the base record
	// put back below.
	if code, _, stderr := snapctl(t, "create", "--backend", "reflink", "--name", "old", img); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	js, _ := expect(t, 0, nil, "list", "--json")
	var all []snapshot.Snapshot
	if err := json.Unmarshal([]byte(js), &all); err != nil {
		t.Fatal(err)
	}
	var old []byte
	for _, s := range all {
		if strings.Contains(s.Path, "old") {
			old, _ = json.Marshal(s)
		}
	}
	if old == nil {
		t.Fatalf("list --json does not show the snapshot named old:\n%s", js)
	}

	os.Remove(s2) // by hand: the lineage's base is missing
	code, s5, base, note, stderr := runOnce(t, "0")
	if code != 0 || base != "" || !strings.Contains(note, "missing") || !strings.Contains(stderr, "not used") {
		t.Fatalf("run with a missing base: exit %d, BASE %q, BASE_NOTE %q\n%s", code, base, note, stderr)
	}

	// The base record put back from before s5's copy verified (a
	// restored backup of the state directory): the base is older than
	// the last verified copy, reported and not used, by run and by
	// changes.
	rec := filepath.Join(os.Getenv("SNAPCTL_STATE_DIR"), "bases", "vm")
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("the base record is not where the test looks: %v", err)
	}
	if err := os.WriteFile(rec, old, 0o600); err != nil {
		t.Fatal(err)
	}
	var oldSnap snapshot.Snapshot
	json.Unmarshal(old, &oldSnap)
	want := "base " + oldSnap.Path + " (made "
	if code, _, errOut := snapctl(t, "changes", oldSnap.Path, s5); code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "is older than the last verified copy (of "+s5+", made ") {
		t.Errorf("changes from a base older than the last verified copy: exit %d:\n%s", code, errOut)
	}
	code, s6, base, note, stderr := runOnce(t, "0")
	if code != 0 || base != "" || !strings.Contains(note, want) || !strings.Contains(note, "is older than the last verified copy (of "+s5) ||
		!strings.Contains(stderr, "snapctl: run: lineage vm: base not usable: "+want) || !strings.Contains(stderr, "; not used\n") {
		t.Fatalf("run with a base older than the last verified copy: exit %d, BASE %q, BASE_NOTE %q\n%s", code, base, note, stderr)
	}
	// That run verified, and its snapshot is the base again.
	if code, _, base, _, stderr := runOnce(t, "0"); code != 0 || base != s6 {
		t.Fatalf("the run after: exit %d, BASE %q, want %q\n%s", code, base, s6, stderr)
	}
}
