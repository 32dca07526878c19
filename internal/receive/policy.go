package receive

import (
	"errors"
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/allow"
	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/frame"
)

// This file is what a restricted key (blkwrite --allow) may do once its
// target is allowed: send a framed stream whose declared source is the
// target's size, verified; nothing that writes unverified bytes, at an
// offset, or reads the target back beyond what --sums already tells it,
// unless the forced command itself says --allow-raw.

// Restriction is the policy of blkwrite --allow for one allowed target.
type Restriction struct {
	Grant *allow.Grant
	// Raw is --allow-raw on the forced command: raw data, seek=, count=,
	// oflag=append, --no-verify and --assume-zeroed are permitted.
	Raw bool
	// Size is the target's size when it is a block device or an
	// existing file, else -1.
	Size    int64
	isBlock bool
}

// sumsBlock is the smallest block blkcat --sums gives a digest of: the
// gaps of a delta under --allow are whole such blocks, whose digests the
// key can read anyway, so a delta's verdict tells it nothing more.
const sumsBlock = 4096

// NewRestriction measures the granted target (a block device's size, a
// file's length) for the checks of a stream against it.
func NewRestriction(g *allow.Grant, raw bool) (*Restriction, error) {
	r := &Restriction{Grant: g, Raw: raw, Size: -1, isBlock: g.IsBlock}
	if !g.Exists {
		return r, nil
	}
	// O_NONBLOCK: a FIFO must not hang the check.
	f, err := os.OpenFile(g.Path, os.O_RDONLY|0o4000, 0)
	if err != nil {
		return nil, &ddmsg.Error{Msg: "failed to open " + ddmsg.Quote(g.Path), Err: err}
	}
	defer f.Close()
	if err := g.Verify(f); err != nil {
		return nil, refused(err.Error())
	}
	if g.IsBlock {
		s, err := blockdev.Size(f)
		if err != nil {
			return nil, err
		}
		r.Size = int64(s)
	} else if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		r.Size = fi.Size()
	}
	return r, nil
}

func refused(msg string) error { return &refusedError{msg} }

// Refused is a refusal of a restricted key's request (exit 3).
func Refused(msg string) error { return refused(msg) }

// CheckOptions refuses, unless --allow-raw, the options that write
// unverified data or place data where the stream does not say.
func (r *Restriction) CheckOptions(ops *ddargs.Operands, noVerify, assumeZeroed, raw bool) error {
	if r == nil || r.Raw {
		return nil
	}
	what := ""
	switch {
	case raw:
		what = "raw data (--raw)"
	case noVerify:
		what = "--no-verify"
	case assumeZeroed:
		what = "--assume-zeroed"
	case ops.Seek != 0:
		what = "seek="
	case ops.Skip != 0:
		what = "skip="
	case ops.Count >= 0:
		what = "count="
	case ops.OFlag.Append:
		what = "oflag=append"
	case ops.Conv.Notrunc || ops.Conv.Sparse:
		what = "conv=notrunc or conv=sparse"
	}
	if what != "" {
		return refused(fmt.Sprintf("this key may not use %s (the forced command would need --allow-raw)", what))
	}
	return nil
}

// RefuseRaw is the refusal of raw (unframed) input without --allow-raw.
func (r *Restriction) RefuseRaw(in string) error {
	if r == nil || r.Raw {
		return nil
	}
	return refused(fmt.Sprintf("%s is not a framed stream: this key writes only verified framed streams (blkcat --frame); raw data needs --allow-raw on the forced command; nothing was written", ddmsg.Quote(in)))
}

// readerOptions bounds the Reader by the size of target of, when it is a
// block device (a file may grow): a record past its end is refused before
// it is hashed or written, whatever the stream declares.
func (r *Restriction) readerOptions(of string) []frame.ReaderOption {
	if r != nil && r.isBlock && r.Size >= 0 {
		return []frame.ReaderOption{frame.WithLimit(r.Size)}
	}
	if of == "" {
		return nil
	}
	if fi, err := os.Stat(of); err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	f, err := os.Open(of)
	if err != nil {
		return nil // the real open reports it
	}
	defer f.Close()
	size, err := blockdev.Size(f)
	if err != nil {
		return nil
	}
	return []frame.ReaderOption{frame.WithLimit(int64(size))}
}

// checkHeader refuses a stream whose source size is unknown, or, for a
// device or a delta or resumed stream, not the target's size: a stream
// over part of the target would verify (and so tell the client) the
// target's bytes it did not write.
func (r *Restriction) checkHeader(h frame.Header, name string) error {
	if r == nil {
		return nil
	}
	full := !h.Delta() && h.StartOffset == 0
	switch {
	case h.SourceSize < 0:
		return refused(fmt.Sprintf("the stream does not declare its source size; this key writes only streams of a known size; nothing was written to %s", ddmsg.Quote(name)))
	case r.Size < 0 && !full:
		return refused(fmt.Sprintf("a delta or resumed stream needs %s to exist; nothing was written", ddmsg.Quote(name)))
	case (r.isBlock || !full) && h.SourceSize != r.Size:
		return refused(fmt.Sprintf("the stream's source is %d bytes but %s is %d bytes; this key writes only streams of the target's size; nothing was written", h.SourceSize, ddmsg.Quote(name), r.Size))
	case h.Delta() && int64(h.BlockSize)%sumsBlock != 0:
		return refused(fmt.Sprintf("a delta stream's block size (%d) must be a multiple of %d under --allow; nothing was written", h.BlockSize, sumsBlock))
	}
	return nil
}

// checkRecord refuses a delta's record that leaves part of a 4 KiB block
// to be read back from the target: the verdict on END would then say
// something about bytes that --sums does not.
func (r *Restriction) checkRecord(h frame.Header, rec frame.Record) error {
	if r == nil || !h.Delta() || (rec.Type != frame.Data && rec.Type != frame.Zero) {
		return nil
	}
	end := rec.Offset + rec.Length
	if rec.Offset%sumsBlock != 0 || (end%sumsBlock != 0 && end != h.SourceSize) {
		return refused(fmt.Sprintf("a delta record [%d, %d) is not made of whole %d-byte blocks; this key accepts only aligned deltas", rec.Offset, end, sumsBlock))
	}
	return nil
}

// verify checks that the opened target is the granted one.
func (r *Restriction) verify(f *os.File) error {
	if r == nil || f == nil {
		return nil
	}
	if err := r.Grant.Verify(f); err != nil {
		if errors.Is(err, allow.ErrNotAllowed) {
			return refused(err.Error())
		}
		return err
	}
	return nil
}
