package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

func TestCopyRecord(t *testing.T) {
	d := Dir(t.TempDir())
	target := filepath.Join(t.TempDir(), "data img")
	if _, err := d.LoadCopy(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no record: got %v, want ErrNotExist", err)
	}
	c := Copy{Target: target, Dev: 2049, Ino: 77, Stamp: "ctime:1234567890123", Size: 1 << 30,
		Alg: "blake3", Digest: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		StreamID: "b10c919e0102030405060708090a0b0c", Time: time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC)}
	if err := d.SaveCopy(c); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadCopy(target)
	if err != nil || got != c {
		t.Fatalf("LoadCopy = %+v, %v; want %+v", got, err, c)
	}
	if !got.Same(2049, 77, "ctime:1234567890123") || got.Same(2049, 77, "ctime:1") || got.Same(2049, 78, "ctime:1234567890123") {
		t.Fatal("Same does not compare device, inode and stamp")
	}
	if (Copy{Dev: 1}).Same(1, 0, "") {
		t.Fatal("a record without a stamp is trusted")
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
	dev, ino, stamp, err := Identify(f)
	if err != nil || ino == 0 || !strings.HasPrefix(stamp, "ctime:") {
		t.Fatalf("Identify = %d %d %q %v", dev, ino, stamp, err)
	}
	// Setting the mtime back, as touch -d does, still moves the ctime.
	fi, _ := os.Stat(p)
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, _, s2, _ := Identify(f); s2 == stamp {
		t.Fatal("stamp unchanged after Chtimes")
	}
}

// TestIdentifyDevice: a write to a block device moves its stamp, a read
// does not.
func TestIdentifyDevice(t *testing.T) {
	testutil.NeedRoot(t)
	dev := testutil.LoopDevice(t, testutil.SparseFile(t, 1<<20))
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, ino, stamp, err := Identify(f)
	if err != nil || ino != 0 || !strings.HasPrefix(stamp, "writes:") {
		t.Fatalf("Identify(%s) = ino %d stamp %q %v", dev, ino, stamp, err)
	}
	if _, err := f.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, s2, _ := Identify(f); s2 != stamp {
		t.Fatalf("a read moved the stamp: %q, then %q", stamp, s2)
	}
	if _, err := f.WriteAt([]byte("written behind the record's back"), 8192); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, _, s2, _ := Identify(f); s2 == stamp {
		t.Fatalf("a write left the stamp at %q", stamp)
	}
}
