package blockdev

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNotSized is returned (wrapped) by Size for files that are neither block
// devices nor regular files, such as pipes, sockets and terminals: their
// size is not known in advance.
var ErrNotSized = errors.New("not a block device or regular file")

// ioctl runs ioctl(fd, req, arg) on f while keeping f open, and returns an
// *os.PathError with Op "ioctl <name>" on failure.
func ioctl(f *os.File, name string, req uint, arg unsafe.Pointer) error {
	return control(f, "ioctl "+name, func(fd uintptr) error {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
		if errno != 0 {
			return errno
		}
		return nil
	})
}

// ioctlUint32 runs an ioctl that stores a 32-bit int or unsigned int.
func ioctlUint32(f *os.File, name string, req uint) (uint32, error) {
	var v uint32
	if err := ioctl(f, name, req, unsafe.Pointer(&v)); err != nil {
		return 0, err
	}
	return v, nil
}

// DeviceSize returns the size in bytes of the block device f
// (BLKGETSIZE64). On a regular file the error wraps unix.ENOTTY.
func DeviceSize(f *os.File) (int64, error) {
	// BLKGETSIZE64 stores a u64 and x/sys has no IoctlGetUint64.
	var size uint64
	if err := ioctl(f, "BLKGETSIZE64", unix.BLKGETSIZE64, unsafe.Pointer(&size)); err != nil {
		return 0, err
	}
	return int64(size), nil
}

// Size returns the size of f in bytes: BLKGETSIZE64 for a block device,
// Stat().Size() for a regular file (the ioctl fails with ENOTTY there). For
// anything else (pipe, socket, character device) the error wraps
// ErrNotSized.
func Size(f *os.File) (int64, error) {
	size, err := DeviceSize(f)
	if err == nil {
		return size, nil
	}
	if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
		return 0, err
	}
	fi, serr := f.Stat()
	if serr != nil {
		return 0, serr
	}
	if !fi.Mode().IsRegular() {
		return 0, &os.PathError{Op: "size", Path: f.Name(),
			Err: fmt.Errorf("%w (file mode %v)", ErrNotSized, fi.Mode().Type())}
	}
	return fi.Size(), nil
}

// IsBlockDevice reports whether f is a block device (fstat: S_IFBLK).
func IsBlockDevice(f *os.File) (bool, error) {
	var st unix.Stat_t
	err := control(f, "fstat", func(fd uintptr) error { return unix.Fstat(int(fd), &st) })
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK, err
}

// LogicalSectorSize returns the logical sector size of the block device f
// (BLKSSZGET): the smallest unit it addresses, and the alignment O_DIRECT
// needs for offsets, lengths and buffers. Usually 512, or 4096 on 4Kn disks.
func LogicalSectorSize(f *os.File) (int, error) {
	v, err := ioctlUint32(f, "BLKSSZGET", unix.BLKSSZGET)
	return int(v), err
}

// PhysicalSectorSize returns the physical sector size of the block device
// f (BLKPBSZGET): the unit the device writes without read-modify-write.
func PhysicalSectorSize(f *os.File) (int, error) {
	v, err := ioctlUint32(f, "BLKPBSZGET", unix.BLKPBSZGET)
	return int(v), err
}

// IOSize returns the I/O size the block device f prefers: the first of its
// optimal I/O size (BLKIOOPT), minimum I/O size (BLKIOMIN) and soft block
// size (BLKBSZGET) that is a power of two. Devices report 0 for unknown
// values, and some report odd ones (RAID stripes), hence the filter. The
// error of the first ioctl is returned when none qualifies; on a regular
// file it wraps unix.ENOTTY.
func IOSize(f *os.File) (int, error) {
	var first error
	for _, q := range []struct {
		name string
		req  uint
	}{
		{"BLKIOOPT", unix.BLKIOOPT},
		{"BLKIOMIN", unix.BLKIOMIN},
		// BLKBSZGET is declared with a size_t argument but the kernel
		// stores an int (put_int in blkdev_common_ioctl).
		{"BLKBSZGET", unix.BLKBSZGET},
	} {
		v, err := ioctlUint32(f, q.name, q.req)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if v > 0 && v&(v-1) == 0 {
			return int(v), nil
		}
	}
	if first == nil {
		first = &os.PathError{Op: "ioctl BLKIOOPT", Path: f.Name(),
			Err: errors.New("device reports no power-of-two I/O size")}
	}
	return 0, first
}

// FlushBuffers writes back and invalidates the buffer cache of the block
// device f (BLKFLSBUF), as `blockdev --flushbufs` does. Needs CAP_SYS_ADMIN.
func FlushBuffers(f *os.File) error {
	return ioctl(f, "BLKFLSBUF", unix.BLKFLSBUF, nil)
}

// ZeroOut zeroes length bytes at off on the block device f (BLKZEROOUT),
// letting the device use WRITE ZEROES or unmap where it can; the kernel falls
// back to writing zero pages itself. off and length must be multiples of
// the logical sector size (EINVAL otherwise) and the range must lie within
// the device. The page cache of the range is invalidated by the kernel.
func ZeroOut(f *os.File, off, length int64) error {
	if off < 0 || length < 0 {
		return &os.PathError{Op: "ioctl BLKZEROOUT", Path: f.Name(), Err: unix.EINVAL}
	}
	r := [2]uint64{uint64(off), uint64(length)}
	return ioctl(f, "BLKZEROOUT", unix.BLKZEROOUT, unsafe.Pointer(&r))
}
