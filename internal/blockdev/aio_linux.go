package blockdev

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AIO is a Linux native asynchronous I/O context (io_setup(2)): reads
// submitted to it run in the kernel while the caller goes on, and one
// goroutine collects their completions. With O_DIRECT it keeps several
// reads in flight from one thread, as fio's libaio engine does, instead
// of a blocked thread per read.
type AIO struct {
	ctx uintptr
}

// iocb and ioEvent are struct iocb and struct io_event of
// <linux/aio_abi.h> (little-endian layout).
type iocb struct {
	data    uint64
	key     uint32
	rwFlags int32
	opcode  uint16
	reqprio int16
	fd      uint32
	buf     uint64
	nbytes  uint64
	offset  int64
	_       uint64
	flags   uint32
	resfd   uint32
}

// AIOEvent is a finished request: the tag it was submitted with and its
// result, the byte count or a negative errno.
type AIOEvent struct {
	Tag  uint64
	obj  uint64
	Res  int64
	res2 int64
}

const iocbCmdPread = 0

// NewAIO sets up a context for up to n requests in flight.
func NewAIO(n int) (*AIO, error) {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, uintptr(n), uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, os.NewSyscallError("io_setup", e)
	}
	return &AIO{ctx: ctx}, nil
}

// Pread submits a read of len(p) bytes of f at off, tagged tag. p must stay
// untouched (and reachable) until Wait returns its event. An error (EAGAIN
// when the kernel has no room for it, EINVAL when f cannot do it) means
// the read was not submitted.
func (a *AIO) Pread(f *os.File, p []byte, off int64, tag uint64) error {
	if len(p) == 0 {
		return errors.New("blockdev: empty AIO read")
	}
	cb := &iocb{data: tag, opcode: iocbCmdPread, fd: uint32(f.Fd()), buf: uint64(uintptr(unsafe.Pointer(&p[0]))), nbytes: uint64(len(p)), offset: off}
	cbs := [1]*iocb{cb}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
		runtime.KeepAlive(cb)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return os.NewSyscallError("io_submit", e)
		}
		if n != 1 {
			return fmt.Errorf("io_submit: %d of 1 requests submitted", n)
		}
		return nil
	}
}

// Wait blocks until at least one request finishes and fills ev with up to
// len(ev) of them. After Close it returns an error.
func (a *AIO) Wait(ev []AIOEvent) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, a.ctx, 1, uintptr(len(ev)), uintptr(unsafe.Pointer(&ev[0])), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, os.NewSyscallError("io_getevents", e)
		}
		return int(n), nil
	}
}

// Close destroys the context: requests still in flight are cancelled or
// waited for, and a Wait in progress or after it returns an error.
func (a *AIO) Close() error {
	if _, _, e := unix.Syscall(unix.SYS_IO_DESTROY, a.ctx, 0, 0); e != 0 {
		return os.NewSyscallError("io_destroy", e)
	}
	return nil
}
