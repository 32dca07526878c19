package send

import (
	"errors"
	"fmt"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// FromKept is blkcat --sums DST on the host where blkwrite keeps DST's
// block sums (state.Kept): when they are valid for DST (the same device
// or file, its size and mtime, sampled leaves of its digest map, and the
// sums the copy record vouches for), it writes them, exactly the stream
// reading DST would give, without reading DST, and returns true. Otherwise
// it returns false, the caller reads DST, and it says why on stderr unless
// nothing is kept for DST at all (a source, or a target blkwrite never
// verified a copy on).
func FromKept(opt Options, c *ddcopy.Copier, dir state.Dir) (bool, error) {
	b, err := keptSums(opt, c, dir)
	if errors.Is(err, state.ErrNoCopy) {
		return false, nil
	}
	if err != nil {
		c.R.Diagnose(fmt.Sprintf("no valid kept block sums for %s (%v): reading it", ddmsg.Quote(c.In.Name), err))
		return false, nil
	}
	// The sidecar blkwrite compares a failed delta's gaps with.
	side := dir.NewSidecarWriter(c.Out.F, c.In.Name)
	if _, err := side.Write(b); err != nil {
		side.Finish(false)
		return true, &ddmsg.Error{Msg: "error writing block sums to " + ddmsg.Quote(c.Out.Name), Err: err}
	}
	side.Finish(true)
	return true, nil
}

func keptSums(opt Options, c *ddcopy.Copier, dir state.Dir) ([]byte, error) {
	if opt.Sums != state.KeptBlockSize {
		return nil, fmt.Errorf("they are of %d-byte blocks, not %d", state.KeptBlockSize, opt.Sums)
	}
	size := c.P.StreamSize(&c.In)
	if size < 0 {
		return nil, errors.New("unknown size")
	}
	k, err := dir.Kept(c.In.F, c.In.Name)
	if err != nil {
		return nil, err
	}
	if k.Copy.Size != size {
		return nil, fmt.Errorf("the last copy covers %d of its %d bytes", k.Copy.Size, size)
	}
	b, err := dir.KeptSums(k)
	if err != nil {
		return nil, err
	}
	if h, _, err := sums.Decode(b); err != nil || h.Size != size || h.BlockSize != opt.Sums {
		return nil, errors.New("the kept block sums are damaged")
	}
	return b, nil
}
