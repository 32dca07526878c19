package blockdev

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

func open(tb testing.TB, path string, flag int) *os.File {
	tb.Helper()
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// blockdevCmd asks util-linux blockdev(8) for one number, to cross-check
// the ioctls against an independent implementation.
func blockdevCmd(tb testing.TB, flag, dev string) int64 {
	tb.Helper()
	testutil.NeedCmd(tb, "blockdev")
	out := strings.TrimSpace(testutil.Run(tb, "blockdev", flag, dev))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		tb.Fatalf("blockdev %s %s printed %q", flag, dev, out)
	}
	return n
}

func TestSizeDevice(t *testing.T) {
	// Not a multiple of 4096; loop devices round down to 512, so this
	// size survives exactly.
	const size = 1<<20 + 512
	dev, _ := testutil.LoopImage(t, size)
	f := open(t, dev, os.O_RDONLY)
	got, err := Size(f)
	if err != nil {
		t.Fatal(err)
	}
	if got != size {
		t.Errorf("Size(%s) = %d, want %d", dev, got, size)
	}
	if want := blockdevCmd(t, "--getsize64", dev); got != want {
		t.Errorf("Size(%s) = %d, blockdev --getsize64 says %d", dev, got, want)
	}
	if blk, err := IsBlockDevice(f); err != nil || !blk {
		t.Errorf("IsBlockDevice(%s) = %v, %v; want true", dev, blk, err)
	}
}

func TestSizeFile(t *testing.T) {
	const size = 12345
	p := testutil.SparseFile(t, size)
	f := open(t, p, os.O_RDONLY)
	got, err := Size(f)
	if err != nil || got != size {
		t.Errorf("Size(file) = %d, %v; want %d", got, err, size)
	}
	if blk, err := IsBlockDevice(f); err != nil || blk {
		t.Errorf("IsBlockDevice(file) = %v, %v; want false", blk, err)
	}
	_, err = DeviceSize(f)
	if !errors.Is(err, unix.ENOTTY) {
		t.Errorf("DeviceSize(file) error %v does not match ENOTTY", err)
	}
	if want := "ioctl BLKGETSIZE64 " + p + ": inappropriate ioctl for device"; err == nil || err.Error() != want {
		t.Errorf("DeviceSize(file) error %q, want %q", err, want)
	}
}

func TestSizeNotSized(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	null := open(t, os.DevNull, os.O_RDONLY)
	for _, f := range []*os.File{r, null} {
		n, err := Size(f)
		if !errors.Is(err, ErrNotSized) {
			t.Errorf("Size(%s) = %d, %v; want ErrNotSized", f.Name(), n, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "size "+f.Name()+": not a block device or regular file") {
			t.Errorf("Size(%s) error %q", f.Name(), err)
		}
	}
}

func TestSectorSizes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		logical int
	}{
		{"default", nil, 512},
		{"4Kn", []string{"--sector-size", "4096"}, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := testutil.LoopDevice(t, testutil.SparseFile(t, 4<<20), tc.args...)
			f := open(t, dev, os.O_RDONLY)
			lss, err := LogicalSectorSize(f)
			if err != nil || lss != tc.logical {
				t.Errorf("LogicalSectorSize = %d, %v; want %d", lss, err, tc.logical)
			}
			if want := blockdevCmd(t, "--getss", dev); int64(lss) != want {
				t.Errorf("LogicalSectorSize = %d, blockdev --getss %d", lss, want)
			}
			pss, err := PhysicalSectorSize(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := blockdevCmd(t, "--getpbsz", dev); int64(pss) != want {
				t.Errorf("PhysicalSectorSize = %d, blockdev --getpbsz %d", pss, want)
			}
			if pss < lss || pss%lss != 0 {
				t.Errorf("PhysicalSectorSize %d is not a multiple of LogicalSectorSize %d", pss, lss)
			}
			if got := DirectAlign(f); got != tc.logical {
				t.Errorf("DirectAlign = %d, want %d", got, tc.logical)
			}

			ios, err := IOSize(f)
			if err != nil {
				t.Fatal(err)
			}
			// The same rule, from blockdev(8)'s numbers.
			want := int64(0)
			for _, fl := range []string{"--getioopt", "--getiomin", "--getbsz"} {
				if v := blockdevCmd(t, fl, dev); v > 0 && v&(v-1) == 0 {
					want = v
					break
				}
			}
			if int64(ios) != want {
				t.Errorf("IOSize = %d, want %d", ios, want)
			}
		})
	}
}

func TestIoctlOnFile(t *testing.T) {
	p := testutil.SparseFile(t, 4096)
	f := open(t, p, os.O_RDWR)
	for _, tc := range []struct {
		op   string
		call func() error
	}{
		{"ioctl BLKSSZGET", func() error { _, err := LogicalSectorSize(f); return err }},
		{"ioctl BLKPBSZGET", func() error { _, err := PhysicalSectorSize(f); return err }},
		{"ioctl BLKIOOPT", func() error { _, err := IOSize(f); return err }},
		{"ioctl BLKFLSBUF", func() error { return FlushBuffers(f) }},
		{"ioctl BLKZEROOUT", func() error { return ZeroOut(f, 0, 512) }},
	} {
		err := tc.call()
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Op != tc.op || pe.Path != p || !errors.Is(err, unix.ENOTTY) {
			t.Errorf("%s on a file: error %v, want PathError %q %s ENOTTY", tc.op, err, tc.op, p)
		}
	}
}

func TestClosedFile(t *testing.T) {
	p := testutil.SparseFile(t, 8192)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		op   string
		call func() error
	}{
		{"ioctl BLKGETSIZE64", func() error { _, err := Size(f); return err }},
		{"fstat", func() error { _, err := IsBlockDevice(f); return err }},
		{"ioctl BLKSSZGET", func() error { _, err := LogicalSectorSize(f); return err }},
		{"fcntl F_SETFL", func() error { return SetDirect(f, true) }},
		{"fcntl F_GETFL", func() error { _, err := IsDirect(f); return err }},
		{"fstat", func() error { return ZeroRange(f, 0, 4096) }},
		{"fallocate PUNCH_HOLE", func() error { return PunchHole(f, 0, 4096) }},
		{"fadvise DONTNEED", func() error { return DropCache(f, 0, 0) }},
		{"fdatasync", func() error { return Fdatasync(f) }},
	} {
		err := tc.call()
		var pe *os.PathError
		if !errors.Is(err, os.ErrClosed) || !errors.As(err, &pe) || pe.Op != tc.op || pe.Path != p {
			t.Errorf("%s on a closed file: %v, want PathError %q %s ErrClosed", tc.op, err, tc.op, p)
		}
	}
	if got := DirectAlign(f); got != 4096 {
		t.Errorf("DirectAlign(closed) = %d, want 4096", got)
	}
}
