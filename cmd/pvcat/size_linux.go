package main

import (
	"io"
	"os"
)

// streamSize returns the bytes left to read from f when f is a regular file
// or a block device: its size less the current offset, so `(dd skip; pvcat)
// < file` still gets a true size. ok is false for pipes, terminals and
// other streams. A block device's size comes from seeking to its end (what
// BLKGETSIZE64 reports), after which the offset is put back.
func streamSize(f *os.File) (n int64, ok bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	m := fi.Mode()
	switch {
	case m.IsRegular():
		n = fi.Size()
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		cur, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false, err
		}
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, false, err
		}
		if _, err := f.Seek(cur, io.SeekStart); err != nil {
			return 0, false, err
		}
		return end - cur, true, nil
	default:
		return 0, false, nil
	}
	cur, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return n, true, nil
	}
	return max(n-cur, 0), true, nil
}
