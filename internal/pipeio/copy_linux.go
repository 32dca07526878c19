package pipeio

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Throttle holds a copy to a rate. Wait blocks until some of want bytes may
// move and returns how many (at least 1 when want > 0); Return gives back
// granted bytes that did not move. progress.Limiter implements it.
type Throttle interface {
	Wait(want int) int
	Return(n int)
}

// Copier copies one stream to another the way pv does: with splice(2)
// when a side is a pipe, else with read/write through one reused buffer,
// counting as it goes. The zero value copies everything with splice where
// the kernel allows it and 1 MiB chunks.
//
// Set the fields before calling Copy and do not change them during it.
type Copier struct {
	// BufSize is the read/write buffer size and the most one splice call
	// asks for. 0 means DefaultPipeSize.
	BufSize int
	// NoSplice forces read/write (pv -C).
	NoSplice bool
	// Max stops the copy after Max bytes; 0 or less copies until EOF.
	Max int64
	// Throttle, if set, is asked before every chunk.
	Throttle Throttle
	// Progress, if set, is called from the copying goroutine after every
	// chunk with the bytes that chunk moved (always > 0).
	Progress func(n int)

	// Spliced reports, after Copy, how many bytes moved by splice(2).
	Spliced int64
}

// Copy copies src to dst until EOF on src, an error, or Max bytes, and
// returns the bytes written. It splices when both are *os.File, at least
// one is a pipe and NoSplice is off; when the kernel refuses the splice with
// EINVAL or ENOSYS (a file opened O_APPEND, a filesystem without splice
// support) it carries on with read/write, as pv does. Errors name the
// operation and the file: "read /dev/stdin: ...", "write /dev/stdout: ...",
// "splice /dev/stdin to /dev/stdout: ..."; errors.Is sees the errno, so a
// reader gone downstream is errors.Is(err, syscall.EPIPE).
func (c *Copier) Copy(dst io.Writer, src io.Reader) (written int64, err error) {
	c.Spliced = 0
	bs := c.BufSize
	if bs <= 0 {
		bs = DefaultPipeSize
	}
	sf, sok := src.(*os.File)
	df, dok := dst.(*os.File)
	if !c.NoSplice && sok && dok && (IsPipe(sf) || IsPipe(df)) {
		written, err = c.splice(df, sf, bs)
		if !errors.Is(err, errNoSplice) {
			return written, err
		}
	}
	buf := make([]byte, bs)
	for c.Max <= 0 || written < c.Max {
		want := c.chunk(bs, written)
		nr, rerr := src.Read(buf[:want])
		if c.Throttle != nil && nr < want {
			c.Throttle.Return(want - nr)
		}
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			written += int64(nw)
			if nw > 0 && c.Progress != nil {
				c.Progress(nw)
			}
			if werr != nil {
				return written, wrap("write", dst, "output", werr)
			}
			if nw != nr {
				return written, fmt.Errorf("write %s: %w", name(dst, "output"), io.ErrShortWrite)
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, wrap("read", src, "input", rerr)
		}
	}
	return written, nil
}

// chunk returns how many bytes to ask for next: at most bs, no further than
// Max, and what the Throttle grants.
func (c *Copier) chunk(bs int, written int64) int {
	want := bs
	if c.Max > 0 && c.Max-written < int64(want) {
		want = int(c.Max - written)
	}
	if c.Throttle != nil {
		want = c.Throttle.Wait(want)
	}
	return want
}

// errNoSplice says the kernel refused the very splice call that returned
// it, so no bytes were lost and read/write can take over.
var errNoSplice = errors.New("splice refused")

func (c *Copier) splice(dst, src *os.File, bs int) (written int64, err error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, errNoSplice
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, errNoSplice
	}
	// Control keeps both files open while their descriptors are in use;
	// the loop runs inside it because splice needs both at once.
	var rerr, werr, cerr error
	rerr = rc.Control(func(rfd uintptr) {
		werr = wc.Control(func(wfd uintptr) {
			written, cerr = c.spliceLoop(int(wfd), int(rfd), bs, dst, src)
		})
	})
	if rerr != nil || werr != nil {
		// The file was closed under us before any splice.
		return written, errors.Join(rerr, werr)
	}
	return written, cerr
}

func (c *Copier) spliceLoop(wfd, rfd, bs int, dst, src *os.File) (written int64, err error) {
	for c.Max <= 0 || written < c.Max {
		want := c.chunk(bs, written)
		n, err := spliceOnce(rfd, wfd, want)
		if c.Throttle != nil && n < want {
			c.Throttle.Return(want - n)
		}
		if n > 0 {
			written += int64(n)
			c.Spliced += int64(n)
			if c.Progress != nil {
				c.Progress(n)
			}
		}
		switch {
		case err == nil && n == 0:
			return written, nil // EOF
		case err == unix.EINVAL || err == unix.ENOSYS:
			if written == 0 {
				return 0, errNoSplice
			}
			// Refused mid-stream: nothing of this call moved, so hand
			// over to read/write with the count so far.
			w, err := c.rest(dst, src, bs, written)
			return written + w, err
		case err != nil:
			return written, fmt.Errorf("splice %s to %s: %w", src.Name(), dst.Name(), err)
		}
	}
	return written, nil
}

// rest finishes a copy with read/write after a splice was refused midway.
func (c *Copier) rest(dst, src *os.File, bs int, done int64) (int64, error) {
	rc := *c
	rc.NoSplice, rc.Spliced = true, 0
	if c.Max > 0 {
		rc.Max = c.Max - done
	}
	return rc.Copy(dst, src)
}

// spliceOnce moves up to n bytes from rfd to wfd, retrying EINTR and
// waiting with poll(2) when a descriptor is non-blocking (EAGAIN). It
// returns 0, nil at EOF.
func spliceOnce(rfd, wfd, n int) (int, error) {
	for {
		m, err := unix.Splice(rfd, nil, wfd, nil, n, unix.SPLICE_F_MOVE)
		switch err {
		case nil:
			return int(m), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// Wait until there is room to write and something to read;
			// an EOF or a gone reader shows as POLLHUP/POLLERR, and the
			// next splice reports it.
			if err := wait(wfd, unix.POLLOUT); err != nil {
				return 0, err
			}
			if err := wait(rfd, unix.POLLIN); err != nil {
				return 0, err
			}
		default:
			return 0, err
		}
	}
}

func wait(fd int, events int16) error {
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(p, -1)
		if err != unix.EINTR {
			return err
		}
	}
}

// wrap names the operation and the file in err, unless err (an
// *os.PathError from *os.File) already does.
func wrap(op string, f any, def string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, name(f, def), err)
}

func name(v any, def string) string {
	if f, ok := v.(interface{ Name() string }); ok {
		return f.Name()
	}
	return def
}
