package blockdev

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrInUse is returned (wrapped) by OpenExclusive when the kernel refuses an
// exclusive open of a block device with EBUSY: the device is mounted, is
// part of a RAID, LVM or device-mapper stack, or another program holds it
// open with O_EXCL.
var ErrInUse = errors.New("device in use")

// inUseError is the error OpenExclusive returns on EBUSY. It matches
// ErrInUse with errors.Is and unwraps to the *os.PathError of the open.
type inUseError struct {
	path string
	err  error
}

func (e *inUseError) Error() string {
	return e.path + " is mounted or in use by another program (opened with O_EXCL)"
}

func (e *inUseError) Unwrap() []error { return []error{ErrInUse, e.err} }

// OpenExclusive opens path with flag. For a block device it adds O_EXCL, so
// the open fails while the device is mounted or claimed by another
// exclusive opener, and holding the file keeps others (mount, mkfs, another
// OpenExclusive) out until it is closed. It does not keep out programs that
// open the device without O_EXCL. O_CREATE in flag is ignored for a device
// (it exists), so one set of flags serves devices and image files. On
// EBUSY the error matches ErrInUse and unix.EBUSY and reads "<path> is mounted or in use by another program
// (opened with O_EXCL)". A read-only device (BLKROGET) opened for writing
// fails with EROFS, before anything is written. For any other path it
// behaves like os.OpenFile(path, flag, 0666), where O_EXCL would mean
// something else.
func OpenExclusive(path string, flag int) (*os.File, error) {
	// Stat first: on a regular file with O_CREATE, O_EXCL means "fail if it
	// exists". Should path change kind between Stat and OpenFile, the open
	// is no worse than a plain os.OpenFile (Linux ignores O_EXCL without
	// O_CREATE on anything but a block device).
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return os.OpenFile(path, flag, 0o666)
	}
	// The device exists, and O_CREATE|O_EXCL would mean "fail with EEXIST".
	// Callers pass O_CREATE so that the same flags create a missing image.
	f, err := os.OpenFile(path, flag&^os.O_CREATE|unix.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, &inUseError{path: path, err: err}
		}
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		// Linux opens a read-only device (losetup -r, blockdev --setro)
		// for writing and fails only the first write, with EPERM.
		if ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET); err == nil && ro != 0 {
			f.Close()
			return nil, &os.PathError{Op: "open", Path: path, Err: unix.EROFS}
		}
	}
	return f, nil
}

// OpenDirect opens path with flag and perm (as os.OpenFile) plus O_DIRECT,
// and reports whether O_DIRECT is in effect. When the open or the
// filesystem refuses O_DIRECT with EINVAL (ramfs; tmpfs before Linux 6.6;
// some FUSE filesystems) it opens path without it and returns direct=false,
// so callers read through the page cache instead of failing. With O_DIRECT,
// the buffer address, file offset and length of every read and write must be
// multiples of DirectAlign(f). For an exclusive direct open of a device,
// call OpenExclusive and then SetDirect(f, true).
func OpenDirect(path string, flag int, perm os.FileMode) (f *os.File, direct bool, err error) {
	if flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
		// open(2) creates the file before it checks O_DIRECT, so a retry
		// would fail with EEXIST. Open without it and switch it on.
		f, err = os.OpenFile(path, flag, perm)
		if err != nil {
			return nil, false, err
		}
		if err := SetDirect(f, true); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return f, false, nil
			}
			f.Close()
			return nil, false, err
		}
		return f, true, nil
	}
	f, err = os.OpenFile(path, flag|unix.O_DIRECT, perm)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, false, err
	}
	return f, false, nil
}

// SetDirect turns O_DIRECT on or off on the open file f (fcntl F_GETFL,
// F_SETFL). GNU dd turns it off before a final write shorter than the block
// size, which O_DIRECT would refuse with EINVAL when it is not a multiple of
// the sector size; blkcat and blkwrite do the same. Turning it on fails with
// EINVAL when the filesystem does not support O_DIRECT.
func SetDirect(f *os.File, on bool) error {
	return control(f, "fcntl F_SETFL", func(fd uintptr) error {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			return err
		}
		want := fl &^ unix.O_DIRECT
		if on {
			want |= unix.O_DIRECT
		}
		if want == fl {
			return nil
		}
		_, err = unix.FcntlInt(fd, unix.F_SETFL, want)
		return err
	})
}

// IsDirect reports whether O_DIRECT is set on f (fcntl F_GETFL).
func IsDirect(f *os.File) (bool, error) {
	fl, err := statusFlags(f)
	return err == nil && fl&unix.O_DIRECT != 0, err
}

// IsAppend reports whether f was opened with O_APPEND (oflag=append, or a
// shell's >> on standard output), where every write lands at the end of
// the file, wherever the offset is; false when fcntl fails.
func IsAppend(f *os.File) bool {
	fl, err := statusFlags(f)
	return err == nil && fl&unix.O_APPEND != 0
}

// statusFlags returns f's file status flags (fcntl F_GETFL).
func statusFlags(f *os.File) (fl int, err error) {
	err = control(f, "fcntl F_GETFL", func(fd uintptr) (err error) {
		fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0)
		return err
	})
	return fl, err
}

// DirectAlign returns the alignment in bytes that O_DIRECT needs on f for
// buffer addresses, file offsets and lengths. For a block device it is the
// logical sector size (BLKSSZGET). For other files it is the larger of the
// memory and offset alignments the filesystem reports through
// statx(STATX_DIOALIGN) (Linux 6.1+), and 4096 when the kernel or the
// filesystem does not say or does not support direct I/O. 4096 is also the
// answer when a call fails, as it suits every common device and filesystem.
func DirectAlign(f *os.File) int {
	const fallback = 4096
	if blk, err := IsBlockDevice(f); err == nil && blk {
		if n, err := LogicalSectorSize(f); err == nil && n > 0 {
			return n
		}
		return fallback
	}
	var st unix.Statx_t
	if err := control(f, "statx", func(fd uintptr) error {
		return unix.Statx(int(fd), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st)
	}); err != nil {
		return fallback
	}
	if st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_offset_align == 0 {
		return fallback
	}
	return int(max(st.Dio_mem_align, st.Dio_offset_align))
}
