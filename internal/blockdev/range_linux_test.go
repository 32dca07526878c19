package blockdev

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// zeroed returns a copy of data with [off, off+n) cleared (clipped).
func zeroed(data []byte, off, n int64) []byte {
	want := append([]byte(nil), data...)
	for i := off; i < off+n && i < int64(len(want)); i++ {
		want[i] = 0
	}
	return want
}

// checkZeroed compares path with data whose [off, off+n) is zeros.
func checkZeroed(t *testing.T, path string, data []byte, off, n int64) {
	t.Helper()
	got := readAll(t, path)
	want := zeroed(data, off, n)
	if len(got) != len(want) {
		t.Fatalf("%s: size %d after ZeroRange, want %d", path, len(got), len(want))
	}
	if i := testutil.FirstDiff(got, want); i >= 0 {
		t.Fatalf("%s: byte %d is %#x, want %#x (zeroed [%d,%d))", path, i, got[i], want[i], off, off+n)
	}
}

type zeroCase struct {
	name   string
	off, n int64
}

var zeroCases = []zeroCase{
	{"aligned", 4096, 64 << 10},
	{"sector aligned", 512, 3 * 512},
	{"unaligned", 1000, 3001},
	{"large", 8192, 3<<20 + 4096}, // more than one fallback buffer
	{"empty", 100, 0},
}

func TestZeroRangeDevice(t *testing.T) {
	testutil.NeedRoot(t)
	for _, direct := range []bool{false, true} {
		for _, tc := range zeroCases {
			name := tc.name
			if direct {
				name += " O_DIRECT"
			}
			t.Run(name, func(t *testing.T) {
				image, data := randomImage(t, 4<<20, 4)
				dev := testutil.LoopDevice(t, image)
				f, isDirect, err := OpenDirect(dev, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if !isDirect {
					t.Fatal("no O_DIRECT on a loop device")
				}
				if !direct {
					if err := SetDirect(f, false); err != nil {
						t.Fatal(err)
					}
				}
				if err := ZeroRange(f, tc.off, tc.n); err != nil {
					t.Fatal(err)
				}
				if on, _ := IsDirect(f); on != direct {
					t.Errorf("O_DIRECT %v after ZeroRange, want %v", on, direct)
				}
				if err := Fdatasync(f); err != nil {
					t.Fatal(err)
				}
				checkZeroed(t, dev, data, tc.off, tc.n)
				f.Close()
				// And what reached the backing file, past any cache.
				checkZeroed(t, image, data, tc.off, tc.n)
			})
		}
	}
}

func TestZeroRangeFile(t *testing.T) {
	testutil.NeedRoot(t)
	// ext4 punches holes; ramfs has none, so ZeroRange writes zeros there.
	for _, fstype := range []string{"ext4", "tmpfs", "ramfs"} {
		t.Run(fstype, func(t *testing.T) {
			var dir string
			switch fstype {
			case "ext4":
				dir = t.TempDir() // the root filesystem is ext4 here
			default:
				dir = mount(t, fstype, "none")
			}
			cases := append(zeroCases,
				zeroCase{"past end", 4<<20 - 5000, 20000},
				zeroCase{"beyond end", 5 << 20, 4096})
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					data := randomBytes(4<<20, 5)
					p := filepath.Join(dir, "data")
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
					f := open(t, p, os.O_RDWR)
					if err := ZeroRange(f, tc.off, tc.n); err != nil {
						t.Fatal(err)
					}
					checkZeroed(t, p, data, tc.off, tc.n)
				})
			}
		})
	}
}

func TestZeroRangeBadRange(t *testing.T) {
	f := open(t, testutil.SparseFile(t, 4096), os.O_RDWR)
	for _, r := range [][2]int64{{-1, 10}, {0, -10}} {
		if err := ZeroRange(f, r[0], r[1]); !errors.Is(err, unix.EINVAL) {
			t.Errorf("ZeroRange(%d, %d) = %v, want EINVAL", r[0], r[1], err)
		}
	}
}

// blocks returns the 512-byte blocks allocated to path.
func blocks(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

func TestPunchHole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "data")
	data := randomBytes(1<<20, 6)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f := open(t, p, os.O_RDWR)
	if err := Fdatasync(f); err != nil {
		t.Fatal(err)
	}
	before := blocks(t, p)
	if err := PunchHole(f, 256<<10, 512<<10); err != nil {
		t.Fatal(err)
	}
	after := blocks(t, p)
	// The hole frees the blocks: proof that nothing was written instead.
	if freed := (before - after) * 512; freed != 512<<10 {
		t.Errorf("PunchHole freed %d bytes, want %d", freed, 512<<10)
	}
	checkZeroed(t, p, data, 256<<10, 512<<10)

	// ramfs has no holes: the error comes back as is.
	ram := mount(t, "ramfs", "none")
	rp := filepath.Join(ram, "data")
	if err := os.WriteFile(rp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rf := open(t, rp, os.O_RDWR)
	err := PunchHole(rf, 0, 4096)
	var pe *os.PathError
	if !errors.Is(err, unix.EOPNOTSUPP) || !errors.As(err, &pe) || pe.Op != "fallocate PUNCH_HOLE" || pe.Path != rp {
		t.Errorf("PunchHole on ramfs: %v, want fallocate PUNCH_HOLE %s EOPNOTSUPP", err, rp)
	}
}

func TestZeroOut(t *testing.T) {
	image, data := randomImage(t, 1<<20, 7)
	dev := testutil.LoopDevice(t, image)
	f := open(t, dev, os.O_RDWR)
	if err := ZeroOut(f, 4096, 8192); err != nil {
		t.Fatal(err)
	}
	checkZeroed(t, dev, data, 4096, 8192)
	// Unaligned, and past the end of the device: EINVAL, nothing written.
	for _, r := range [][2]int64{{100, 512}, {512, 100}, {1 << 20, 512}, {-512, 512}} {
		err := ZeroOut(f, r[0], r[1])
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("ZeroOut(%d, %d) = %v, want EINVAL", r[0], r[1], err)
		}
	}
	checkZeroed(t, dev, data, 4096, 8192)
}

// resident returns how many of the pages of f's first size bytes are in
// the page cache.
func resident(t *testing.T, f *os.File, size int) int {
	t.Helper()
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if err := Resident(f, 0, size, vec); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vec {
		n += int(v)
	}
	return n
}

func TestDropCache(t *testing.T) {
	const size = 1 << 20
	image, data := randomImage(t, size, 8)
	dev := testutil.LoopDevice(t, image)
	page := os.Getpagesize()
	for _, p := range []string{image, dev} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f := open(t, p, os.O_RDWR)
			fill := func() {
				if err := DropCache(f, 0, 0); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, size)
				if _, err := f.ReadAt(buf, 0); err != nil {
					t.Fatal(err)
				}
				if i := testutil.FirstDiff(buf, data); i >= 0 {
					t.Fatalf("read differs at %d", i)
				}
				if n := resident(t, f, size); n != size/page {
					t.Fatalf("%d of %d pages resident after a read", n, size/page)
				}
			}
			fill()
			if err := DropCache(f, 0, 0); err != nil {
				t.Fatal(err)
			}
			if n := resident(t, f, size); n != 0 {
				t.Errorf("DropCache(0, 0): %d pages still resident", n)
			}

			fill()
			if err := DropCache(f, size/2, size/4); err != nil {
				t.Fatal(err)
			}
			if n := resident(t, f, size); n != size/page*3/4 {
				t.Errorf("DropCache(half, quarter): %d pages resident, want %d", n, size/page*3/4)
			}

			// BLKFLSBUF invalidates a device's cache too.
			if p == dev {
				fill()
				if err := FlushBuffers(f); err != nil {
					t.Fatal(err)
				}
				if n := resident(t, f, size); n != 0 {
					t.Errorf("FlushBuffers: %d pages still resident", n)
				}
			}
		})
	}
}

func TestFdatasyncErrors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	err = Fdatasync(w)
	var pe *os.PathError
	if !errors.Is(err, unix.EINVAL) || !errors.As(err, &pe) || pe.Op != "fdatasync" {
		t.Errorf("Fdatasync(pipe) = %v, want fdatasync ... EINVAL", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Fdatasync(f); err != nil {
		t.Errorf("Fdatasync(file) = %v", err)
	}
	f.Close()
	if err := Fdatasync(f); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Fdatasync(closed) = %v, want ErrClosed", err)
	}
}

func TestZeroRangeDevicePastEnd(t *testing.T) {
	// A device cannot grow: zeroing past its end fails, where a regular
	// file's range is clipped.
	image, _ := randomImage(t, 1<<20, 9)
	dev := testutil.LoopDevice(t, image)
	f := open(t, dev, os.O_RDWR)
	err := ZeroRange(f, 1<<20-4096, 8192)
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("ZeroRange past the end of %s: %v, want ENOSPC", dev, err)
	}
}
