// Package pipeio moves bytes between pipes: sizing pipe buffers and, for
// pvcat, splice(2).
package pipeio

import (
	"os"

	"golang.org/x/sys/unix"
)

// DefaultPipeSize is the pipe buffer every blkpipe tool asks for on the
// pipes it touches. With Linux's default of 64 KiB the two processes on a
// pipe take turns every 64 KiB; 1 MiB lets each move more per turn.
const DefaultPipeSize = 1 << 20

// IsPipe reports whether f is a pipe (FIFO).
func IsPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// Grow raises the buffer of the pipe f to at least size bytes
// (F_SETPIPE_SZ) and returns the size in force afterwards. It never shrinks
// a pipe. When f is not a pipe it returns 0 and no error. When the kernel
// refuses the size (EPERM above /proc/sys/fs/pipe-max-size for an
// unprivileged user, EBUSY when the pipe holds more data), the pipe keeps its
// size and the error says why; callers treat that as advisory.
func Grow(f *os.File, size int) (int, error) {
	if !IsPipe(f) {
		return 0, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cur int
	var serr error
	err = rc.Control(func(fd uintptr) {
		cur, serr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		if serr != nil || cur >= size {
			return
		}
		var n int
		n, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
		if serr == nil {
			cur = n
		}
	})
	if err != nil {
		return 0, err
	}
	if serr != nil {
		return cur, &os.PathError{Op: "fcntl F_SETPIPE_SZ", Path: f.Name(), Err: serr}
	}
	return cur, nil
}
