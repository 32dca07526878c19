package blockdev

import (
	"os"
)

// control runs fn with f's descriptor, keeping f open meanwhile (through
// f.SyscallConn, so no runtime.KeepAlive is needed), and returns fn's error
// as an *os.PathError{Op: op, Path: f.Name()}. A closed f gives an error
// matching os.ErrClosed, as os.File's own methods do.
func control(f *os.File, op string, fn func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err == nil {
		var ferr error
		err = rc.Control(func(fd uintptr) { ferr = fn(fd) })
		if err == nil {
			err = ferr
		}
		// internal/poll's ErrFileClosing cannot be named outside the
		// standard library; os maps it to ErrClosed the same way.
		if err != nil && err.Error() == "use of closed file" {
			err = os.ErrClosed
		}
	}
	if err != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: err}
	}
	return nil
}
