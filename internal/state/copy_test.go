package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCopyRecord(t *testing.T) {
	d := Dir(t.TempDir())
	target := filepath.Join(t.TempDir(), "data img")
	if _, err := d.LoadCopy(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no record: got %v, want ErrNotExist", err)
	}
	c := Copy{Target: target, Dev: 2049, Ino: 77, Mtime: 1234567890123, Size: 1 << 30,
		Alg: "blake3", Digest: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		StreamID: "b10c919e0102030405060708090a0b0c", Time: time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC)}
	if err := d.SaveCopy(c); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadCopy(target)
	if err != nil || got != c {
		t.Fatalf("LoadCopy = %+v, %v; want %+v", got, err, c)
	}
	if !got.Same(2049, 77, 1234567890123) || got.Same(2049, 77, 1) || got.Same(2049, 78, 1234567890123) {
		t.Fatal("Same does not compare device, inode and mtime")
	}

	// Every single-byte change is caught: by the checksum, or the
	// checksum's own field no longer parses.
	b, err := os.ReadFile(d.CopyPath(target))
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x01
		if _, err := parseCopy(bad); !errors.Is(err, ErrDamaged) {
			t.Fatalf("byte %d flipped: got %v, want ErrDamaged", i, err)
		}
	}
	for _, n := range []int{0, 10, len(b) / 2, len(b) - 1} {
		if _, err := parseCopy(b[:n]); !errors.Is(err, ErrDamaged) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrDamaged", n, err)
		}
	}

	if err := d.SaveMap(target, []byte("map")); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveCopy(target); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.CopyPath(target), d.MapPath(target)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after RemoveCopy: %v", p, err)
		}
	}
	if err := d.RemoveCopy(target); err != nil {
		t.Fatalf("RemoveCopy with nothing to remove: %v", err)
	}
}

func TestIdentify(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dev, ino, mtime, err := Identify(f)
	if err != nil || ino == 0 || mtime == 0 {
		t.Fatalf("Identify = %d %d %d %v", dev, ino, mtime, err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if _, _, m2, _ := Identify(f); m2 == mtime {
		t.Fatal("mtime unchanged after Chtimes")
	}
}
