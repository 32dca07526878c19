package pipeio

import (
	"os"

	"golang.org/x/sys/unix"
)

// Detach ends what f, a pipe's write end, sends: /dev/null takes the
// pipe's place on f's descriptor (dup3), so the reader sees end of file
// now, while the descriptor number stays taken and later writes to f go
// nowhere instead of into a file opened meanwhile. A writer that has more
// to do after its stream (blkcat keeping a snapshot's leaf map) lets the
// reader finish in parallel. When f is not a pipe it does nothing.
func Detach(f *os.File) error {
	if !IsPipe(f) {
		return nil
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) {
		derr = unix.Dup3(int(null.Fd()), int(fd), unix.O_CLOEXEC)
	}); err != nil {
		return err
	}
	if derr != nil {
		return &os.PathError{Op: "dup3", Path: f.Name(), Err: derr}
	}
	return nil
}
