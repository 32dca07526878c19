package blockdev

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
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

// AIOReads keeps up to n reads in flight on one AIO context and calls
// each one's done with its result (the bytes read, or a negative errno)
// as the kernel completes it, on the one goroutine that collects them. It
// is the submit-and-collect loop blkcat's reader, blkcat --changed-from
// and blkwrite's delta check share.
type AIOReads struct {
	a       *AIO
	slots   chan struct{} // one per read in flight
	mu      sync.Mutex
	pending map[uint64]func(int64)
	tag     uint64
	stopped chan struct{}
}

// NewAIOReads sets up a context for n reads in flight and starts its
// collector.
func NewAIOReads(n int) (*AIOReads, error) {
	a, err := NewAIO(n)
	if err != nil {
		return nil, err
	}
	r := &AIOReads{a: a, slots: make(chan struct{}, n), pending: make(map[uint64]func(int64)), stopped: make(chan struct{})}
	go r.collect(n)
	return r, nil
}

// Read submits a read of len(p) bytes of f at off, waiting while n reads
// are in flight; done runs once it completes. It reports whether the read
// was submitted: if not (the kernel did not take it, or Close came
// first), done never runs. p must stay untouched until done runs.
func (r *AIOReads) Read(f *os.File, p []byte, off int64, done func(res int64)) bool {
	select {
	case r.slots <- struct{}{}:
	case <-r.stopped:
		return false
	}
	r.mu.Lock()
	r.tag++
	tag := r.tag
	r.pending[tag] = done
	r.mu.Unlock()
	if err := r.a.Pread(f, p, off, tag); err != nil {
		r.mu.Lock()
		delete(r.pending, tag)
		r.mu.Unlock()
		<-r.slots
		return false
	}
	return true
}

// collect calls the done of each read the kernel completes, until Close.
func (r *AIOReads) collect(n int) {
	defer close(r.stopped)
	ev := make([]AIOEvent, n)
	for {
		k, err := r.a.Wait(ev)
		if err != nil {
			return
		}
		for _, e := range ev[:k] {
			r.mu.Lock()
			done := r.pending[e.Tag]
			delete(r.pending, e.Tag)
			r.mu.Unlock()
			<-r.slots
			done(e.Res)
		}
	}
}

// Close destroys the context and waits for the collector: reads still in
// flight are cancelled or waited for, and their done does not run.
func (r *AIOReads) Close() {
	r.a.Close()
	<-r.stopped
}
