// Package blockdev holds the device I/O primitives every blkpipe tool uses:
// opening a device or image (O_DIRECT with a fallback, O_EXCL against
// mounted devices), asking its size, sector sizes and preferred I/O size,
// aligned buffers for O_DIRECT, zeroing or punching ranges, flushing and
// dropping the page cache, and a fast all-zero check for sparse writes.
//
// Each ioctl or syscall has one small function whose doc comment names it.
// Syscall failures are returned as *os.PathError whose Op names the call
// ("ioctl BLKGETSIZE64", "fallocate PUNCH_HOLE") and whose Path is the
// file's name, so messages say what was done to what and
// errors.Is(err, unix.ENOTTY) still sees the errno.
//
// Functions taking an *os.File go through f.SyscallConn, which keeps the
// file open for the duration of the call. None of them keep state: they are
// safe for concurrent use to the extent that the underlying calls are.
//
// This package knows nothing of framing, compression or progress; it is
// Linux-only except for the buffer and zero-scanning helpers.
package blockdev
