package target

import (
	"fmt"
	"io"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"golang.org/x/sys/unix"
)

// fullCause says what ran out when a write to t failed with ENOSPC or
// EFBIG at byte off of it (off < 0: unknown): a file's file system; a
// device's end, when off reached it; else the storage behind the device,
// such as a thin pool, is full although the device is large enough.
func (t *Target) fullCause(off int64) (cause string, smaller bool) {
	if !t.IsBlock {
		return fmt.Sprintf("the file system holding %s is full", ddmsg.Quote(t.Name)), false
	}
	if t.F == nil {
		return "target is smaller than the input", true
	}
	size, err := blockdev.Size(t.F)
	if err != nil || off < 0 || off >= int64(size) {
		return "target is smaller than the input", true
	}
	behind := "the storage behind it"
	if isDM(t.F) {
		behind = "the thin pool (or other device-mapper storage) behind it"
	}
	return fmt.Sprintf("%s is out of space: %s holds %d bytes and the write at offset %d was inside it", behind, ddmsg.Quote(t.Name), size, off), false
}

// isDM reports whether f is a device-mapper device (an LVM volume).
func isDM(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d/dm", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	return err == nil
}

// position is t's file offset, where dd's writes (at the offset) stopped,
// or -1.
func (t *Target) position() int64 {
	off, err := t.F.Seek(0, io.SeekCurrent)
	if err != nil {
		return -1
	}
	return off
}
