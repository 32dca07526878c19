package blockdev

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FIFREEZE and FITHAW are _IOWR('X', 119, int) and _IOWR('X', 120, int)
// from linux/fs.h; x/sys does not export them.
const (
	ioctlFIFREEZE = 0xC0045877
	ioctlFITHAW   = 0xC0045878
)

// Clone makes dst share src's extents (FICLONE): an instant copy-on-write
// copy of the whole file on filesystems with reflink (XFS with reflink=1,
// btrfs). dst must be a regular file open for writing on the same
// filesystem; its old content is replaced. Without reflink support the
// error wraps EOPNOTSUPP (ext4, tmpfs), EXDEV (other filesystem) or EINVAL,
// and dst is left as it was.
func Clone(dst, src *os.File) error {
	drc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	srcRC, err := src.SyscallConn()
	if err != nil {
		return err
	}
	var errno error
	cerr := drc.Control(func(dfd uintptr) {
		err := srcRC.Control(func(sfd uintptr) {
			errno = unix.IoctlFileClone(int(dfd), int(sfd))
		})
		if err != nil {
			errno = err
		}
	})
	if cerr != nil {
		return cerr
	}
	if errno != nil {
		return &os.PathError{Op: "ioctl FICLONE from " + src.Name() + " to", Path: dst.Name(), Err: errno}
	}
	return nil
}

// Freeze suspends writes to the filesystem mounted at mountpoint and
// flushes it to disk (FIFREEZE), so a snapshot of the device under it is
// consistent. Every successful Freeze must be followed by Thaw: writers
// block until then. Freezing an already frozen filesystem fails with EBUSY.
// Needs CAP_SYS_ADMIN.
func Freeze(mountpoint string) error {
	return fsIoctl(mountpoint, ioctlFIFREEZE, "ioctl FIFREEZE")
}

// Thaw resumes writes to the filesystem mounted at mountpoint (FITHAW).
// Thawing a filesystem that is not frozen fails with EINVAL.
func Thaw(mountpoint string) error {
	return fsIoctl(mountpoint, ioctlFITHAW, "ioctl FITHAW")
}

func fsIoctl(mountpoint string, req uint, op string) error {
	// O_RDONLY on the directory is enough for both ioctls.
	f, err := os.OpenFile(mountpoint, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return &os.PathError{Op: op, Path: mountpoint, Err: errno}
	}
	return nil
}
