package send

import (
	"errors"
	"fmt"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
)

func newSumsSender(opt Options, c *ddcopy.Copier, dir state.Dir) (*Sender, error) {
	size, err := knownSize(c, "--sums")
	if err != nil {
		return nil, err
	}
	// Read through the page cache, not O_DIRECT: in a delta pipeline the
	// verifying blkwrite reads the same blocks of this device shortly
	// after, and finds them there (it drops them behind itself).
	if c.In.Direct && blockdev.SetDirect(c.In.F, false) == nil {
		c.In.Direct = false
	}
	side := dir.NewSidecarWriter(opt.output(c), c.In.Name)
	sw, err := sums.NewWriter(side, opt.Sums, size)
	if err != nil {
		side.Finish(false)
		return nil, ddtool.Usage(err.Error())
	}
	return &Sender{Sink: sw, Finish: func(err error) error {
		if cerr := sw.Close(); err == nil && errors.Is(cerr, sums.ErrSize) {
			// No trailer was written; the fault is SRC's.
			err = fmt.Errorf("%s changed size while it was read: %w", ddmsg.Quote(c.In.Name), cerr)
		} else if err == nil && cerr != nil {
			err = &ddmsg.Error{Msg: "error writing block sums to " + ddmsg.Quote(c.Out.Name), Err: cerr}
		}
		side.Finish(err == nil)
		return err
	}}, nil
}
