// Package target is where blkcat and blkwrite write: one write target,
// opened and guarded by Open, that raw copies (through ddcopy) and framed
// streams (through receive) both write through. Guarded (blkwrite), a block
// device is opened with O_EXCL and refused when mounted or in use, a new
// file in /dev is refused, an image file is locked, and a device too small
// for the input is refused before anything is written; writes turn
// O_DIRECT off for one they cannot do aligned; the words for a target that
// ran out of room live here too.
package target

import (
	"errors"
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"golang.org/x/sys/unix"
)

// Spec says how to open a target.
type Spec struct {
	Path  string // the file or device; it must not be empty
	Flags int    // open(2) flags from oflag= (O_DSYNC, O_APPEND, ...)

	Create bool // O_CREAT: make a missing file
	Excl   bool // O_EXCL (conv=excl)
	Trunc  bool // O_TRUNC
	// ReadBack opens the target read-write, for a stream that reads its
	// gaps back from it; else TryRead tries read-write first (dd does when
	// seek= may need to read) and falls back to write-only.
	ReadBack, TryRead bool

	// Direct turns O_DIRECT on: oflag=direct (UserDirect) or the tool's
	// own choice. Not for a character device or FIFO with ReadBack.
	Direct, UserDirect bool
	Nocache            bool // oflag=nocache

	// Guard is blkwrite's care for devices: a block device is opened with
	// O_EXCL (refused while mounted or in use) and made durable with
	// fdatasync, and a new file in /dev is refused.
	Guard bool
	// Lock takes an exclusive flock on an image file for as long as it is
	// open, so that two copies into one file cannot both verify.
	Lock bool
	// CheckSize, if set, is given a block device's size after it is
	// opened and before anything is written; its error refuses the
	// target.
	CheckSize func(size int64) error
}

// Target is an open write target. The fields describe it; Write, WriteAt,
// Zero and Datasync act on it.
type Target struct {
	F          *os.File
	Name       string // the path, or "standard output"
	IsBlock    bool   // a block device
	Regular    bool   // a regular file
	Direct     bool   // O_DIRECT is on
	UserDirect bool   // oflag=direct was asked for (dd then fsyncs after an unaligned tail)
	Align      int    // O_DIRECT alignment of F
	Nocache    bool   // oflag=nocache
	Datasync   bool   // fdatasync before success (blkwrite on block devices)
	// Fsync is set when an O_DIRECT the user asked for was turned off for
	// an unaligned write: dd then makes the output durable with fsync.
	Fsync bool

	bounce []byte // aligned copy of an unaligned buffer for O_DIRECT
}

// Open opens and guards the target spec describes. This is the one
// function that opens a write target.
func Open(spec Spec) (*Target, error) {
	t := &Target{Name: spec.Path, UserDirect: spec.UserDirect, Nocache: spec.Nocache}
	flag := spec.Flags
	if spec.Create {
		flag |= os.O_CREATE
		if spec.Guard {
			if err := refuseNewDevFile(spec.Path); err != nil {
				return nil, err
			}
		}
	}
	if spec.Excl {
		flag |= os.O_EXCL
	}
	if spec.Trunc {
		flag |= os.O_TRUNC
	}
	if fi, err := os.Stat(spec.Path); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		t.IsBlock = true
	}
	open := func(mode int) (*os.File, bool, error) {
		switch {
		case t.IsBlock && spec.Guard:
			f, err := blockdev.OpenExclusive(spec.Path, mode|flag)
			if err != nil {
				return nil, false, err
			}
			return f, spec.Direct && blockdev.SetDirect(f, true) == nil, nil
		case spec.Direct:
			return blockdev.OpenDirect(spec.Path, mode|flag, 0o666)
		default:
			f, err := os.OpenFile(spec.Path, mode|flag, 0o666)
			return f, false, err
		}
	}
	var err error
	switch {
	case spec.ReadBack:
		t.F, t.Direct, err = open(os.O_RDWR)
	case spec.TryRead:
		t.F, t.Direct, err = open(os.O_RDWR)
		if t.F == nil {
			t.F, t.Direct, err = open(os.O_WRONLY)
		}
	default:
		t.F, t.Direct, err = open(os.O_WRONLY)
	}
	if err != nil {
		if errors.Is(err, blockdev.ErrInUse) {
			return nil, err
		}
		return nil, &ddmsg.Error{Msg: "failed to open " + ddmsg.Quote(spec.Path), Err: err}
	}
	if fi, err := t.F.Stat(); err == nil {
		t.Regular = fi.Mode().IsRegular()
	}
	if t.IsBlock && spec.CheckSize != nil {
		size, err := blockdev.Size(t.F)
		if err != nil {
			t.F.Close()
			return nil, err
		}
		if err := spec.CheckSize(int64(size)); err != nil {
			t.F.Close()
			return nil, err
		}
	}
	if spec.Lock && !t.IsBlock && t.Regular {
		if err := lock(t.F); err != nil {
			t.F.Close()
			return nil, err
		}
	}
	if t.Direct {
		t.Align = blockdev.DirectAlign(t.F)
	}
	if t.IsBlock && spec.Guard {
		t.Datasync = true
	}
	return t, nil
}

// Stdout is standard output f as a target. checkSize, if set, is given
// its size when it is a block device (blkwrite > /dev/sdx), as Open does.
func Stdout(f *os.File, nocache bool, checkSize func(size int64) error) (*Target, error) {
	t := &Target{F: f, Name: "standard output", Nocache: nocache}
	if fi, err := f.Stat(); err == nil {
		t.Regular = fi.Mode().IsRegular()
	}
	if isBlock, err := blockdev.IsBlockDevice(f); err == nil && isBlock && checkSize != nil {
		if size, err := blockdev.Size(f); err == nil {
			if err := checkSize(int64(size)); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// lock takes an exclusive flock on a regular-file target for as long as f
// is open: two framed copies into one image file would each verify the
// stream it received and print "verified" while the file holds a mix of
// both (a block device is opened with O_EXCL instead).
func lock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil
	}
	if lerr == unix.EWOULDBLOCK {
		return fmt.Errorf("%s is being written by another blkwrite (flock); nothing was written", ddmsg.Quote(f.Name()))
	}
	// Any other error is a file system without flock (some network
	// ones): go on unlocked, as dd would.
	return nil
}

// DirectUnit is the size and alignment every O_DIRECT write needs, 0 when
// O_DIRECT is off.
func (t *Target) DirectUnit() int {
	if !t.Direct {
		return 0
	}
	return max(t.Align, 512)
}

// Bounce gives t an aligned buffer of size bytes, into which WriteAt
// copies an aligned write whose memory is not aligned, rather than turn
// O_DIRECT off for it.
func (t *Target) Bounce(size int) {
	if d := t.DirectUnit(); d > 0 {
		t.bounce = blockdev.AlignedBuffer(size, d)
	}
}

// DirectOff turns O_DIRECT off for good, as dd does before a write it
// cannot do aligned (its final short block), and then fsyncs the output
// at the end when the user asked for oflag=direct.
func (t *Target) DirectOff() {
	if t.Direct {
		blockdev.SetDirect(t.F, false)
		t.Direct = false
		if t.UserDirect {
			t.Fsync = true
		}
	}
}

// direct returns p ready to be written at off (off < 0: at the file's
// offset, which the caller keeps aligned), in the bounce buffer when only
// its memory is unaligned, after turning O_DIRECT off when p cannot be
// written with it.
func (t *Target) direct(p []byte, off int64) []byte {
	d := t.DirectUnit()
	if d == 0 {
		return p
	}
	aligned := len(p)%d == 0 && (off < 0 || off%int64(d) == 0)
	if aligned && blockdev.IsAligned(p, d) {
		return p
	}
	if aligned && len(p) <= len(t.bounce) {
		// Large heap buffers usually start on a page; copy only when not.
		return t.bounce[:copy(t.bounce, p)]
	}
	t.DirectOff()
	return p
}

// Write writes p at the file's offset, as dd's writes do.
func (t *Target) Write(p []byte) (int, error) {
	return t.F.Write(t.direct(p, -1))
}

// WriteAt writes p at offset off.
func (t *Target) WriteAt(p []byte, off int64) (int, error) {
	return t.F.WriteAt(t.direct(p, off), off)
}

// Zero makes [off, off+n) of a seekable target read as zeros: BLKZEROOUT
// on a block device, a punched or zeroed range in a file (see
// blockdev.ZeroRange).
func (t *Target) Zero(off, n int64) error {
	return blockdev.ZeroRange(t.F, off, n)
}

// Fdatasync makes the target durable with fdatasync. Its error is worded
// as dd's; errors.Is sees the errno (EINVAL: the file cannot be synced).
func (t *Target) Fdatasync() error {
	if err := blockdev.Fdatasync(t.F); err != nil {
		return &ddmsg.Error{Msg: "fdatasync failed for " + ddmsg.Quote(t.Name), Err: err}
	}
	return nil
}

// ExplainFull adds to err, the failure of a dd write after written bytes
// landed, what running out of room means for this target: a file's file
// system is full, a device is smaller than the input, or the thin pool
// behind a device large enough is full (see fullCause).
func (t *Target) ExplainFull(tool string, err error, written int64) error {
	if !errors.Is(err, unix.ENOSPC) && !(errors.Is(err, unix.EFBIG) && t.IsBlock) {
		return err
	}
	if !t.IsBlock {
		// A file grows: its file system is what ran out.
		return fmt.Errorf("%w\n%s: the file system holding %s is full: %d bytes landed on it, the rest did not fit", err, tool, ddmsg.Quote(t.Name), written)
	}
	cause, smaller := t.fullCause(t.position())
	if smaller {
		return fmt.Errorf("%w\n%s: target is smaller than the input: %d bytes landed on %s, the rest did not fit", err, tool, written, ddmsg.Quote(t.Name))
	}
	return fmt.Errorf("%w\n%s: %s: %d bytes were written to %s before the error (written, not made durable), the rest were not", err, tool, cause, written, ddmsg.Quote(t.Name))
}

// WriteError words err, the failure of a write of a framed stream that
// stopped at offset off, with what running out of room means for this
// target.
func (t *Target) WriteError(off int64, err error, seekable bool) error {
	if seekable && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG)) {
		cause := "the file system holding it is full" // an image file grows
		if t.IsBlock {
			cause, _ = t.fullCause(off)
		}
		return fmt.Errorf("error writing %s at offset %d: %s (%s)", ddmsg.Quote(t.Name), off, ddmsg.Strerror(err), cause)
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG) {
		return fmt.Errorf("error writing %s at offset %d: %s (target is smaller than the input)", ddmsg.Quote(t.Name), off, ddmsg.Strerror(err))
	}
	return &ddmsg.Error{Msg: fmt.Sprintf("error writing %s at offset %d", ddmsg.Quote(t.Name), off), Err: err}
}

// Incomplete is the line blkwrite prints whenever a copy that changed the
// target did not finish.
func Incomplete(landed int64, name string) string {
	return fmt.Sprintf("the copy is incomplete: %d bytes landed on %s; do not use the target", landed, ddmsg.Quote(name))
}

// EnableDirect turns O_DIRECT on where the file system supports it (not
// tmpfs) and reports whether it did.
func (t *Target) EnableDirect() bool {
	if blockdev.SetDirect(t.F, true) != nil {
		return false
	}
	t.Direct, t.Align = true, blockdev.DirectAlign(t.F)
	return true
}

// GuardSize refuses, before anything is written, a block device target
// name of devSize bytes that cannot hold an input of in bytes (-1: not
// known) written from offset start. Offsets dd cannot seek to (!ok: beyond
// an off_t, or past the end of the device) are left to the copy, which
// fails on them with dd's "cannot skip" or "cannot seek".
func GuardSize(name string, devSize, in, start int64, ok bool) error {
	if in < 0 || !ok || start > devSize {
		return nil
	}
	if in > devSize-start {
		return fmt.Errorf("target is smaller than the input: %s holds %d bytes, the input needs %d bytes from offset %d; nothing was written",
			ddmsg.Quote(name), devSize, in, start)
	}
	return nil
}
