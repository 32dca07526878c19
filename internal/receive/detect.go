// Package receive is blkwrite's side of a copy: it tells a framed stream
// from raw input (Detect), applies a framed stream to its target (Framed:
// records at their offsets, ZERO runs, checksums, the source's SHA-256,
// the blocks a delta or resumed stream leaves out read back from the
// target), records resume points (the resumer), and restricts what an
// ssh forced command may do (Restrict, --allow).
package receive

import (
	"io"
	"os"
	"strings"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/frame"
)

// Detect tells whether the input starts with a framed stream's
// magic, whether it is empty, and whether it is cut inside the magic (all
// of it, one to seven bytes, is the magic's start: a sender that died in
// its first write), without losing a byte or changing what dd's reads
// would see: a seekable input is peeked with pread; from a stream
// blkwrite reads once (more only while the bytes so far could still be
// the magic), and the copy then gets exactly those bytes as its first
// read. That read asks for what dd's first read would (ibs bytes, at
// least the magic's length, at most 64 MiB), so the records it makes are
// dd's: a read of 64 KiB made a short record of a larger ibs from
// /dev/urandom ("2+1 records in" for bs=1M count=3). A character device
// that can seek (/dev/zero) is read and seeked back instead, so that
// skip= still seeks on it as dd's does.
func Detect(in *ddcopy.Input, ibs int) (framed, empty, cut bool, err error) {
	if in.Seekable && in.Size >= 0 {
		cur, err := in.F.Seek(0, io.SeekCurrent)
		if err != nil {
			return false, false, false, nil
		}
		buf := blockdev.AlignedBuffer(4096, 4096)
		n, err := in.F.ReadAt(buf, cur-cur%4096)
		if err != nil && err != io.EOF {
			return false, false, false, nil // the copy will meet the error and report it as dd does
		}
		rel := int(cur % 4096)
		got := buf[rel:max(n, rel)]
		return len(got) >= len(frame.Magic) && string(got[:len(frame.Magic)]) == frame.Magic, len(got) == 0 && err == io.EOF,
			err == io.EOF && isMagicCut(got), nil
	}
	size := (len(frame.Magic) + ibs - 1) / ibs * ibs
	if size > 64<<20 {
		size = 64 << 20
	}
	buf := make([]byte, size)
	n := 0
	var rerr error
	var back int64 = -1
	if fi, err := in.F.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		if cur, err := in.F.Seek(0, io.SeekCurrent); err == nil {
			back = cur
		}
	}
	for {
		m, err := in.F.Read(buf[n:])
		n += m
		if err != nil {
			rerr = err
			break
		}
		if n >= len(frame.Magic) || !strings.HasPrefix(frame.Magic, string(buf[:n])) {
			break
		}
	}
	if back < 0 || rerr != nil && rerr != io.EOF {
		in.R = &prefixReader{pre: buf[:n], err: rerr, r: in.F}
	} else if _, err := in.F.Seek(back, io.SeekStart); err != nil {
		in.R = &prefixReader{pre: buf[:n], err: rerr, r: in.F}
	}
	return n >= len(frame.Magic) && string(buf[:len(frame.Magic)]) == frame.Magic, n == 0 && rerr == io.EOF,
		rerr == io.EOF && isMagicCut(buf[:n]), nil
}

// isMagicCut reports whether b is a proper, non-empty start of the magic.
func isMagicCut(b []byte) bool {
	return len(b) > 0 && len(b) < len(frame.Magic) && strings.HasPrefix(frame.Magic, string(b))
}

// prefixReader returns bytes already read from r (as one read), then the
// error that read met, then reads r.
type prefixReader struct {
	pre []byte
	err error
	r   io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	if p.err != nil {
		err := p.err
		p.err = nil
		return 0, err
	}
	return p.r.Read(b)
}
