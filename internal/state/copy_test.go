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
	id, err := Identify(f)
	if err != nil || id.Ino == 0 || !strings.HasPrefix(id.Stamp, "ctime:") {
		t.Fatalf("Identify = %+v %v", id, err)
	}
	stamp := id.Stamp
	// Setting the mtime back, as touch -d does, still moves the ctime.
	fi, _ := os.Stat(p)
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if id2, _ := Identify(f); id2.Stamp == stamp {
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
	id, err := Identify(f)
	if err != nil || id.Ino != 0 || id.FS != "" || !strings.HasPrefix(id.Stamp, "writes:") {
		t.Fatalf("Identify(%s) = %+v %v", dev, id, err)
	}
	stamp := id.Stamp
	if _, err := f.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if id2, _ := Identify(f); id2.Stamp != stamp {
		t.Fatalf("a read moved the stamp: %q, then %q", stamp, id2.Stamp)
	}
	if _, err := f.WriteAt([]byte("written behind the record's back"), 8192); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if id2, _ := Identify(f); id2.Stamp == stamp {
		t.Fatalf("a write left the stamp at %q", stamp)
	}
}

// TestCopySame: a record matches a file by inode and stamp, and by device
// number or, when both have one, by file system id (a remounted btrfs
// subvolume or loop file system has another st_dev); never without a
// stamp, never across a changed stamp or inode, never by device alone
// when the file system ids differ only if the device differs too.
func TestCopySame(t *testing.T) {
	const st = "ctime:1234567890123"
	rec := Copy{Dev: 45, Ino: 77, FS: "fsid:0123456789abcdef", Stamp: st}
	old := Copy{Dev: 45, Ino: 77, Stamp: st} // a record from before FS
	dev := Copy{Dev: 2049, Stamp: "writes:boot:8"}
	for _, tc := range []struct {
		name string
		c    Copy
		id   ID
		want bool
	}{
		{"same", rec, ID{45, 77, "fsid:0123456789abcdef", st}, true},
		{"remounted", rec, ID{46, 77, "fsid:0123456789abcdef", st}, true},
		{"remounted, rewritten", rec, ID{46, 77, "fsid:0123456789abcdef", "ctime:1"}, false},
		{"remounted, other inode", rec, ID{46, 78, "fsid:0123456789abcdef", st}, false},
		{"other file system", rec, ID{46, 77, "fsid:fedcba9876543210", st}, false},
		{"other file system, no fsid", rec, ID{46, 77, "", st}, false},
		{"same device, fsid gone", rec, ID{45, 77, "", st}, true},
		{"rewritten", rec, ID{45, 77, "fsid:0123456789abcdef", "ctime:1"}, false},
		{"old record", old, ID{45, 77, "fsid:0123456789abcdef", st}, true},
		{"old record, remounted", old, ID{46, 77, "fsid:0123456789abcdef", st}, false},
		{"no stamp", Copy{Dev: 1}, ID{Dev: 1}, false},
		{"no stamp, same fs", Copy{Dev: 1, FS: "fsid:1"}, ID{Dev: 2, FS: "fsid:1"}, false},
		{"device", dev, ID{Dev: 2049, Stamp: "writes:boot:8"}, true},
		{"device written", dev, ID{Dev: 2049, Stamp: "writes:boot:16"}, false},
		{"other device", dev, ID{Dev: 2050, Stamp: "writes:boot:8"}, false},
	} {
		if got := tc.c.Same(tc.id); got != tc.want {
			t.Errorf("%s: %+v.Same(%+v) = %v, want %v", tc.name, tc.c, tc.id, got, tc.want)
		}
	}
}

// TestCopyRecordFS: the file system id is kept in the record, and a
// record without it (as older versions wrote) still reads.
func TestCopyRecordFS(t *testing.T) {
	d := Dir(t.TempDir())
	c := Copy{Target: "/srv/img", Dev: 45, Ino: 77, FS: "fsid:0123456789abcdef", Stamp: "ctime:1", Size: 10,
		Alg: "blake3", Digest: "00", StreamID: "11", Time: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC), Sums: "deadbeef"}
	for _, c := range []Copy{c, func() Copy { c.FS = ""; return c }(), func() Copy { c.FS, c.Sums = "", ""; return c }()} {
		if err := d.SaveCopy(c); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(d.CopyPath(c.Target))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\nfs ") != (c.FS != "") {
			t.Errorf("record with FS %q:\n%s", c.FS, b)
		}
		if got, err := d.LoadCopy(c.Target); err != nil || got != c {
			t.Errorf("LoadCopy = %+v, %v; want %+v", got, err, c)
		}
	}
}

// TestIdentifyRemount: a file on a btrfs or XFS loop file system,
// unmounted and mounted again with another st_dev (btrfs: another
// anonymous device; XFS: its image on another loop device), still
// matches its record; one rewritten between the mounts does not, nor does
// a file of another file system of the same kind.
func TestIdentifyRemount(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mount", "umount")
	for _, mkfs := range []string{"mkfs.btrfs", "mkfs.xfs"} {
		t.Run(mkfs, func(t *testing.T) {
			testutil.NeedCmd(t, mkfs)
			fs := testutil.RemountableFS(t, 320<<20, mkfs, "-q")
			mnt := fs.Dir
			kept, rewritten := filepath.Join(mnt, "kept"), filepath.Join(mnt, "rewritten")
			for _, p := range []string{kept, rewritten} {
				if err := os.WriteFile(p, []byte("night 1"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var recKept, recRewritten Copy
			recKept.SetID(identifyPath(t, kept))
			recRewritten.SetID(identifyPath(t, rewritten))
			if recKept.FS == "" {
				t.Skipf("%s gives no file system name here (XFS needs FS_IOC_GETFSUUID, Linux 6.5): %+v", mkfs, recKept)
			}
			// Another file system of the same kind mounted in between
			// takes the device number (anonymous or loop) the first one
			// had, so the next mount surely gets another.
			fs.Unmount()
			other := testutil.MountFS(t, 320<<20, mkfs, "-q")
			if mkfs == "mkfs.xfs" {
				fs.Reattach()
			}
			fs.Mount()
			if err := os.WriteFile(rewritten, []byte("night 2"), 0o644); err != nil {
				t.Fatal(err)
			}
			fs.Unmount()
			fs.Mount()
			now := identifyPath(t, kept)
			if now.Dev == recKept.Dev {
				t.Skipf("st_dev %d is the same after a remount: nothing to test", now.Dev)
			}
			if !recKept.Same(now) {
				t.Errorf("remounted file not recognised: recorded %+v, now %+v", recKept, now)
			}
			if id := identifyPath(t, rewritten); recRewritten.Same(id) {
				t.Errorf("file rewritten between mounts matched its old record: recorded %+v, now %+v", recRewritten, id)
			}
			if id := identifyPath(t, other); id.FS == recKept.FS {
				t.Errorf("another file system has the same name %q", id.FS)
			}
		})
	}
}

// TestIdentifySnapshot: a btrfs snapshot's files keep their inode numbers
// and ctimes; its subvolume is another file system name, so a record of
// the origin's file never matches the snapshot's, nor the other way.
func TestIdentifySnapshot(t *testing.T) {
	testutil.NeedCmd(t, "btrfs")
	mnt := testutil.MountFS(t, 320<<20, "mkfs.btrfs", "-q")
	vol := filepath.Join(mnt, "vol")
	testutil.Run(t, "btrfs", "subvolume", "create", vol)
	if err := os.WriteFile(filepath.Join(vol, "img"), []byte("night 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(mnt, "snap")
	testutil.Run(t, "btrfs", "subvolume", "snapshot", "-r", vol, snap)
	a, b := identifyPath(t, filepath.Join(vol, "img")), identifyPath(t, filepath.Join(snap, "img"))
	if a.Ino != b.Ino || a.Stamp != b.Stamp {
		t.Logf("the snapshot's file has another inode or ctime: %+v, %+v", a, b)
	}
	var rec Copy
	rec.SetID(a)
	if a.FS == "" || a.FS == b.FS || rec.Same(b) {
		t.Errorf("origin %+v and snapshot %+v are one file", a, b)
	}
}

// identifyPath is Identify of the file at p.
func identifyPath(t *testing.T, p string) ID {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := Identify(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
