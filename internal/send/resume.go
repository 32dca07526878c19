package send

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// newResumeSender starts a framed stream at the offset in blkwrite's
// resume token, with the interrupted stream's id, after hashing SRC's
// prefix so END still carries the whole source's digest.
func newResumeSender(ctx context.Context, opt Options, c *ddcopy.Copier) (*Sender, error) {
	tok, err := state.ParseToken(opt.Resume)
	if err != nil {
		return nil, ddtool.Usage(fmt.Sprintf("invalid --resume token '%s': %v", opt.Resume, err))
	}
	if tok.Changed {
		return nil, fmt.Errorf("resume point '%s' is of a changed-block delta: resume it with blkcat --changed-from BASE --resume TOKEN SNAP; nothing was sent", opt.Resume)
	}
	size, err := knownSize(c, "--resume")
	if err != nil {
		return nil, err
	}
	if size != tok.Size {
		return nil, fmt.Errorf("resume point is for a %d-byte source, %s is %d bytes: it belongs to another copy; nothing was sent", tok.Size, ddmsg.Quote(c.In.Name), size)
	}
	if tok.HasSample {
		got, err := state.Sample(c.In.F, tok.Offset)
		if err != nil {
			return nil, &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}
		}
		if got != tok.Sample {
			return nil, fmt.Errorf("resume point does not match %s: the target's first %d bytes are not this source's (sampled blocks differ; another source, or it changed since the interrupted copy): make a full copy; nothing was sent",
				ddmsg.Quote(c.In.Name), tok.Offset)
		}
	}
	fw, err := frame.NewWriter(opt.output(c), append(opt.writerOptions(), frame.WithSourceSize(size),
		frame.WithStartOffset(tok.Offset), frame.WithStreamID(tok.ID))...)
	if err != nil {
		return nil, ddtool.Usage(err.Error())
	}
	if err := hashPrefix(ctx, fw, c.In.F, tok.Offset); err != nil {
		fw.Close()
		if err == ddtool.ErrInterrupted {
			return nil, err
		}
		return nil, &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}
	}
	c.P.Skip, c.P.SkipTail = tok.Offset/int64(c.P.IBS), tok.Offset%int64(c.P.IBS)
	c.R.Diagnose(fmt.Sprintf("resuming at byte %d of %d (%d bytes to send)", tok.Offset, size, size-tok.Offset))
	return &Sender{Sink: fw, Finish: closeFrame(fw, c)}, nil
}

// hashPrefix feeds f's first n bytes to fw.HashOnly, reading aligned
// chunks so O_DIRECT works, until done or ctx is cancelled
// (ddtool.ErrInterrupted).
func hashPrefix(ctx context.Context, fw *frame.Writer, f *os.File, n int64) error {
	buf := blockdev.AlignedBuffer(8<<20, 4096)
	for off := int64(0); off < n; {
		if ctx.Err() != nil {
			return ddtool.ErrInterrupted
		}
		want := min(int64(len(buf)), (n-off+4095)&^4095)
		k, err := f.ReadAt(buf[:want], off)
		k = int(min(int64(k), n-off))
		if k > 0 {
			if _, herr := fw.HashOnly(buf[:k]); herr != nil {
				return herr
			}
			off += int64(k)
		}
		if err != nil && off < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("hash the first %d bytes at offset %d: %w", n, off, err)
		}
	}
	return nil
}
