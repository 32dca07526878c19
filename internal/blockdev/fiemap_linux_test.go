package blockdev

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

func TestFiemap(t *testing.T) {
	// XFS: btrfs and XFS are both tested through changes.Compare.
	mnt := mountFS(t, 320<<20, "mkfs.xfs", "-q")
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Eight separate 64 KiB runs with 64 KiB holes between them,
	// then a hole to the end at 2 MiB.
	data := randomBytes(64<<10, 1)
	for i := int64(0); i < 8; i++ {
		if _, err := f.WriteAt(data, i*128<<10); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(2 << 20); err != nil {
		t.Fatal(err)
	}
	// Batches of 3 make the caller ask again from the last end.
	var got []FiemapExtent
	buf := make([]FiemapExtent, 3)
	var start uint64
	for {
		n, err := Fiemap(f, start, 2<<20-start, FiemapFlagSync, buf)
		if err != nil {
			t.Fatalf("Fiemap: %v", err)
		}
		got = append(got, buf[:n]...)
		if n < len(buf) || buf[n-1].Flags&FiemapExtentLast != 0 {
			break
		}
		start = buf[n-1].Logical + buf[n-1].Length
	}
	// Adjacent allocations may come back merged; what counts is
	// that the mapped bytes are exactly the eight runs.
	mapped := make([]bool, 32)
	for _, e := range got {
		if e.Flags&(FiemapExtentUnknown|FiemapExtentDelalloc) != 0 {
			t.Errorf("extent %+v still unknown after FIEMAP_FLAG_SYNC", e)
		}
		for off := e.Logical; off < e.Logical+e.Length; off += 64 << 10 {
			mapped[off/(64<<10)] = true
		}
	}
	for i, m := range mapped {
		if want := i%2 == 0 && i < 16; m != want {
			t.Errorf("64 KiB unit %d mapped=%v, want %v (extents %+v)", i, m, want, got)
		}
	}
	if len(got) == 0 || got[len(got)-1].Flags&FiemapExtentLast == 0 {
		t.Errorf("last extent not flagged FIEMAP_EXTENT_LAST: %+v", got)
	}

}

func TestFiemapUnsupported(t *testing.T) {
	// tmpfs has no FIEMAP; a pipe is not a file at all.
	f, err := os.CreateTemp("/dev/shm", "fiemap")
	if err != nil {
		testutil.Skip(t, "no /dev/shm: "+err.Error())
	}
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = Fiemap(f, 0, 1<<20, FiemapFlagSync, make([]FiemapExtent, 4))
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "ioctl FS_IOC_FIEMAP" ||
		!(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY)) {
		t.Fatalf("Fiemap on tmpfs: %v, want ioctl FS_IOC_FIEMAP failing with EOPNOTSUPP or ENOTTY", err)
	}
}
