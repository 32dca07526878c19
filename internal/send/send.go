// Package send is blkcat's side of a copy: it frames a source (--frame,
// -z), and writes the block sums of one (--sums), a delta against such
// sums (--against) and the rest of an interrupted framed copy (--resume).
// A Sender takes the copy engine's output in place of the real output.
//
//	blkcat --sums[=BS] SRC         per-block digests of SRC (internal/sums)
//	blkcat --against SUMS SRC      a delta stream: only blocks whose digest differs
//	blkcat --resume TOKEN SRC      a framed stream from where blkwrite stopped
package send

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// Options say what blkcat sends; the zero Options is a plain copy.
type Options struct {
	Frame bool // --frame (also set by -z, --against, --resume)
	Codec frame.Codec
	Level int
	Sums  int // --sums block size, 0 off
	// SumsReread is --sums-reread: read SRC even where blkwrite keeps
	// valid sums of it (FromKept).
	SumsReread bool
	Against    string // --against SUMS
	// --changed-from BASE: a changed-block delta against the snapshot
	// BASE (see Changed), with the change list from Changes (--changes
	// FILE) or, when empty, from BASE's and SRC's extents.
	ChangedFrom, Changes string
	// Ended, if set, is called once a changed-block stream is complete
	// (END written), before SNAP's map and sums are kept: blkcat ends its
	// output there, so the receiver finishes meanwhile.
	Ended  func()
	Resume string // --resume TOKEN
	// Written, if set, counts the bytes of the stream written to the
	// output (blkcat --json).
	Written *atomic.Int64
	// Digest is END's whole-source digest (--digest ALG); 0 is
	// frame.DefaultDigest.
	Digest frame.DigestAlg
}

// writerOptions are the frame writer options every framed stream of
// blkcat's takes from opt: the codec and the digest.
func (opt Options) writerOptions() []frame.WriterOption {
	o := []frame.WriterOption{frame.WithCodec(opt.Codec, opt.Level)}
	if opt.Digest != 0 {
		o = append(o, frame.WithDigest(opt.Digest))
	}
	return o
}

// Sender is what blkcat's copy feeds instead of its output: a frame.Writer
// or a sums.Writer.
type Sender struct {
	Sink io.Writer
	// Finish closes the sink after the copy returned err and returns the
	// tool's error, worded.
	Finish func(err error) error
}

// New sets up blkcat's framed, delta, resume or sums output for the copy
// c, or returns nil for a plain copy. stdin is --against -; dir keeps the
// sums sidecar of --sums.
// Reading the sums header and hashing a resume point's prefix happen
// here, before the copy: ctx's SIGINT or SIGTERM stops them (the hash of
// most of a large device takes minutes).
func New(ctx context.Context, opt Options, c *ddcopy.Copier, stdin *os.File, dir state.Dir) (*Sender, error) {
	switch {
	case opt.Sums > 0:
		return newSumsSender(opt, c, dir)
	case opt.Against != "":
		return newDeltaSender(ctx, opt, c, stdin)
	case opt.Resume != "":
		return newResumeSender(ctx, opt, c)
	case opt.Frame:
		fw, err := newFrameWriter(opt, c)
		if err != nil {
			return nil, err
		}
		return &Sender{Sink: fw, Finish: closeFrame(fw, c)}, nil
	}
	return nil, nil
}

// closeFrame returns the sender's finish for a frame writer: END only when
// the copy succeeded, never after a failed read.
func closeFrame(fw *frame.Writer, c *ddcopy.Copier) func(error) error {
	return func(err error) error {
		if err != nil {
			fw.Abort(err)
			return err
		}
		if cerr := fw.Close(); errors.Is(cerr, frame.ErrSourceSize) {
			// The stream was cut without END; the fault is SRC's, which
			// grew or shrank while it was read (an image being replaced).
			err = fmt.Errorf("%s changed size while it was read: %w", ddmsg.Quote(c.In.Name), cerr)
		} else if cerr != nil {
			err = &ddmsg.Error{Msg: "error writing " + ddmsg.Quote(c.Out.Name), Err: cerr}
		}
		return err
	}
}

// knownSize returns the size of SRC, which delta and resume need.
func knownSize(c *ddcopy.Copier, what string) (int64, error) {
	size := c.P.StreamSize(&c.In)
	if size < 0 {
		return 0, ddtool.Usage(fmt.Sprintf("%s needs SRC to be a device or file of known size; %s is not", what, ddmsg.Quote(c.In.Name)))
	}
	return size, nil
}

// newFrameWriter sets up blkcat --frame: the copier's output becomes the
// source of a framed stream written to the real output.
func newFrameWriter(opt Options, c *ddcopy.Copier) (*frame.Writer, error) {
	size := c.P.StreamSize(&c.In)
	fopts := opt.writerOptions()
	if size >= 0 {
		fopts = append(fopts, frame.WithSourceSize(size))
	}
	fw, err := frame.NewWriter(opt.output(c), fopts...)
	if err != nil {
		return nil, ddtool.Usage(err.Error())
	}
	return fw, nil
}
