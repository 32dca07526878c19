package blockdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// checkDirectRead reads f with O_DIRECT in effect: an aligned read returns
// want's bytes, a misaligned buffer is refused with EINVAL (which proves
// the page cache is bypassed), and after SetDirect(false) the misaligned
// read works.
func checkDirectRead(t *testing.T, f *os.File, want []byte) {
	t.Helper()
	align := DirectAlign(f)
	if align < 512 || align&(align-1) != 0 {
		t.Fatalf("DirectAlign = %d", align)
	}
	if on, err := IsDirect(f); err != nil || !on {
		t.Fatalf("IsDirect = %v, %v; want true", on, err)
	}
	const n = 64 << 10
	off := int64(2 * align)
	buf := AlignedBuffer(n+align, align)
	if _, err := f.ReadAt(buf[:n], off); err != nil {
		t.Fatalf("aligned O_DIRECT read: %v", err)
	}
	if i := testutil.FirstDiff(buf[:n], want[off:off+n]); i >= 0 {
		t.Fatalf("aligned O_DIRECT read differs at byte %d", i)
	}
	if align > 512 {
		// Half the alignment must be refused, or DirectAlign is too small
		// to be needed (we are not testing what it suffices for only).
		if _, err := f.ReadAt(buf[:n], off+int64(align/2)); !errors.Is(err, unix.EINVAL) {
			t.Fatalf("O_DIRECT read at offset %d with DirectAlign %d: error %v, want EINVAL", off+int64(align/2), align, err)
		}
	}
	mis := buf[1 : n+1]
	if _, err := f.ReadAt(mis, off); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("misaligned O_DIRECT read: error %v, want EINVAL", err)
	}
	if err := SetDirect(f, false); err != nil {
		t.Fatal(err)
	}
	if on, err := IsDirect(f); err != nil || on {
		t.Fatalf("after SetDirect(false): IsDirect = %v, %v", on, err)
	}
	if _, err := f.ReadAt(mis, off+1); err != nil {
		t.Fatalf("misaligned buffered read: %v", err)
	}
	if !bytes.Equal(mis, want[off+1:off+1+n]) {
		t.Fatal("misaligned buffered read returned wrong bytes")
	}
	if err := SetDirect(f, true); err != nil {
		t.Fatal(err)
	}
	if on, err := IsDirect(f); err != nil || !on {
		t.Fatalf("after SetDirect(true): IsDirect = %v, %v", on, err)
	}
}

// sectorSizes are the loop device configurations O_DIRECT is tested on.
var sectorSizes = []struct {
	name string
	args []string
	size int
}{
	{"512", nil, 512},
	{"4Kn", []string{"--sector-size", "4096"}, 4096},
}

func TestOpenDirectDevice(t *testing.T) {
	for _, ss := range sectorSizes {
		t.Run(ss.name, func(t *testing.T) {
			image, data := randomImage(t, 1<<20, 1)
			dev := testutil.LoopDevice(t, image, ss.args...)
			f, direct, err := OpenDirect(dev, os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !direct {
				t.Fatal("OpenDirect on a loop device: direct = false")
			}
			if got := DirectAlign(f); got != ss.size {
				t.Errorf("DirectAlign = %d, want %d", got, ss.size)
			}
			checkDirectRead(t, f, data)
		})
	}
}

func TestOpenDirectFile(t *testing.T) {
	// A file on ext4 in a loop device: the filesystem reports the device's
	// sector size through statx(STATX_DIOALIGN).
	testutil.NeedCmd(t, "mkfs.ext4")
	for _, ss := range sectorSizes {
		t.Run(ss.name, func(t *testing.T) {
			dev := testutil.LoopDevice(t, testutil.SparseFile(t, 32<<20), ss.args...)
			testutil.Run(t, "mkfs.ext4", "-q", "-b", "4096", dev)
			dir := mount(t, "ext4", dev)
			p := filepath.Join(dir, "data")
			data := randomBytes(1<<20, 2)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, direct, err := OpenDirect(p, os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !direct {
				t.Fatal("OpenDirect on ext4: direct = false")
			}
			if got := DirectAlign(f); got != ss.size {
				t.Errorf("DirectAlign = %d, want %d", got, ss.size)
			}
			checkDirectRead(t, f, data)
		})
	}
}

func TestOpenDirectFallback(t *testing.T) {
	// ramfs has no direct I/O and refuses O_DIRECT with EINVAL. tmpfs
	// refused it too before Linux 6.6 and takes it since: either way
	// OpenDirect must succeed and tell the truth.
	for _, tc := range []struct {
		fstype    string
		mayDirect bool
	}{
		{"ramfs", false},
		{"tmpfs", true},
	} {
		t.Run(tc.fstype, func(t *testing.T) {
			dir := mount(t, tc.fstype, "none")
			data := randomBytes(64<<10, 3)
			p := filepath.Join(dir, "data")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, o := range []struct {
				name string
				path string
				flag int
			}{
				{"read existing", p, os.O_RDONLY},
				{"create", filepath.Join(dir, "new"), os.O_RDWR | os.O_CREATE | os.O_TRUNC},
				{"create exclusive", filepath.Join(dir, "excl"), os.O_RDWR | os.O_CREATE | os.O_EXCL},
			} {
				f, direct, err := OpenDirect(o.path, o.flag, 0o600)
				if err != nil {
					t.Fatalf("%s: OpenDirect: %v", o.name, err)
				}
				on, err := IsDirect(f)
				if err != nil {
					t.Fatal(err)
				}
				if on != direct {
					t.Errorf("%s: OpenDirect said direct=%v, fcntl says %v", o.name, direct, on)
				}
				if direct && !tc.mayDirect {
					t.Errorf("%s: direct = true on %s", o.name, tc.fstype)
				}
				t.Logf("%s on %s: direct=%v", o.name, tc.fstype, direct)
				if !direct {
					if got := DirectAlign(f); got != 4096 {
						t.Errorf("%s: DirectAlign without direct I/O = %d, want 4096", o.name, got)
					}
				}
				if o.path == p && !direct {
					// Buffered reads at any alignment.
					got := make([]byte, 1000)
					if _, err := f.ReadAt(got, 3); err != nil || !bytes.Equal(got, data[3:1003]) {
						t.Errorf("%s: buffered read: %v", o.name, err)
					}
					if err := SetDirect(f, true); !errors.Is(err, unix.EINVAL) {
						t.Errorf("SetDirect(true) on %s: %v, want EINVAL", tc.fstype, err)
					}
				}
				f.Close()
			}
		})
	}
}

func TestOpenDirectErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := OpenDirect(missing, os.O_RDONLY, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenDirect(missing): %v, want ErrNotExist", err)
	}
	existing := testutil.SparseFile(t, 10)
	if _, _, err := OpenDirect(existing, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, os.ErrExist) {
		t.Errorf("OpenDirect(existing, O_EXCL): %v, want ErrExist", err)
	}
}

func TestOpenExclusiveMounted(t *testing.T) {
	testutil.NeedCmd(t, "mkfs.ext4")
	dev, _ := testutil.LoopImage(t, 32<<20)
	testutil.Run(t, "mkfs.ext4", "-q", dev)
	mount(t, "ext4", dev)
	for _, flag := range []int{os.O_RDONLY, os.O_RDWR} {
		f, err := OpenExclusive(dev, flag)
		if err == nil {
			f.Close()
			t.Fatalf("OpenExclusive(mounted %s, %#x) succeeded", dev, flag)
		}
		if !errors.Is(err, ErrInUse) || !errors.Is(err, unix.EBUSY) {
			t.Errorf("OpenExclusive(mounted): %v does not match ErrInUse and EBUSY", err)
		}
		if want := dev + " is mounted or in use by another program (opened with O_EXCL)"; err.Error() != want {
			t.Errorf("OpenExclusive(mounted) error %q, want %q", err, want)
		}
	}
}

func TestOpenExclusiveHeld(t *testing.T) {
	dev, _ := testutil.LoopImage(t, 1<<20)
	first, err := OpenExclusive(dev, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY | os.O_CREATE | os.O_TRUNC} {
		if _, err := OpenExclusive(dev, flag); !errors.Is(err, ErrInUse) {
			t.Errorf("second OpenExclusive(%#x) while held: %v, want ErrInUse", flag, err)
		}
	}
	// O_EXCL only keeps out other exclusive openers.
	plain, err := os.Open(dev)
	if err != nil {
		t.Errorf("plain open while held: %v", err)
	} else {
		plain.Close()
	}
	first.Close()
	// The flags a writer uses for "device or new image file" work on a
	// device: O_CREATE is dropped, it would turn O_EXCL into EEXIST.
	again, err := OpenExclusive(dev, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatalf("OpenExclusive after the holder closed: %v", err)
	}
	again.Close()
}

// TestOpenExclusiveReadOnly: a read-only loop device is refused for
// writing at open, with EROFS, and still opens for reading.
func TestOpenExclusiveReadOnly(t *testing.T) {
	img := testutil.SparseFile(t, 1<<20)
	dev := testutil.LoopDevice(t, img, "--read-only")
	for _, flag := range []int{os.O_RDWR, os.O_WRONLY | os.O_CREATE | os.O_TRUNC} {
		f, err := OpenExclusive(dev, flag)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), dev) {
			t.Errorf("OpenExclusive(%s, %#x): %v, want EROFS naming the device", dev, flag, err)
		}
	}
	f, err := OpenExclusive(dev, os.O_RDONLY)
	if err != nil {
		t.Fatalf("read-only open of a read-only device: %v", err)
	}
	f.Close()
}

func TestOpenExclusiveFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	// Creates like os.OpenFile, then opens the existing file again:
	// O_CREATE without O_EXCL, so no EEXIST.
	for i := 0; i < 2; i++ {
		f, err := OpenExclusive(p, os.O_WRONLY|os.O_CREATE)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o666&^umask() {
		t.Errorf("created file: %v, %v", fi.Mode(), err)
	}
	if _, err := OpenExclusive(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL); !errors.Is(err, os.ErrExist) {
		t.Errorf("O_CREATE|O_EXCL on an existing file: %v, want ErrExist", err)
	}
	if _, err := OpenExclusive(filepath.Join(dir, "missing"), os.O_RDONLY); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	// A character device is not claimed either.
	f, err := OpenExclusive(os.DevNull, os.O_WRONLY)
	if err != nil {
		t.Fatalf("OpenExclusive(%s): %v", os.DevNull, err)
	}
	f.Close()
}

func umask() os.FileMode {
	m := unix.Umask(0)
	unix.Umask(m)
	return os.FileMode(m)
}

func TestIsAppend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, tc := range []struct {
		flag int
		want bool
	}{{os.O_WRONLY | os.O_CREATE, false}, {os.O_WRONLY | os.O_APPEND, true}, {os.O_RDWR | os.O_APPEND, true}} {
		f, err := os.OpenFile(p, tc.flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if got := IsAppend(f); got != tc.want {
			t.Errorf("IsAppend after open flags %#x = %v, want %v", tc.flag, got, tc.want)
		}
		f.Close()
	}
}
