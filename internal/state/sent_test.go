package state

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSent: a sent record, map and sums round-trip; PruneSent removes
// those of a snapshot that is gone and keeps the others.
func TestSent(t *testing.T) {
	d := Dir(t.TempDir())
	snaps := t.TempDir()
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	for _, name := range []string{"a", "b"} {
		p := filepath.Join(snaps, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		c := Copy{Target: p, Size: 1, Alg: "blake3", Digest: "00", StreamID: "", Time: time.Unix(1, 0)}
		if err := d.SaveSent(&c, write("map "+name), write("sums "+name)); err != nil {
			t.Fatal(err)
		}
		got, err := d.LoadSent(p)
		if err != nil || got.Target != p || got.Digest != "00" {
			t.Fatalf("LoadSent: %+v %v", got, err)
		}
		if b, _ := os.ReadFile(d.SentMapPath(p)); string(b) != "map "+name {
			t.Fatalf("map %q", b)
		}
	}
	os.Remove(filepath.Join(snaps, "a"))
	if err := d.PruneSent(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.SentPath(filepath.Join(snaps, "a")), d.SentMapPath(filepath.Join(snaps, "a")), d.SentSumsPath(filepath.Join(snaps, "a"))} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s kept after its snapshot went", p)
		}
	}
	if _, err := d.LoadSent(filepath.Join(snaps, "b")); err != nil {
		t.Errorf("b's record pruned: %v", err)
	}
}
