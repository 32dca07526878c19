package receive

import (
	"fmt"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// This file holds the checks of a delta or resumed stream against its
// target, and what blkwrite says when the digest of one fails.

// checkDeltaTarget refuses, before anything is written, a delta stream
// whose source is larger than a regular-file target (blocks the stream
// leaves out would be missing), and notes a target larger than the source,
// whose tail is left alone.
func checkDeltaTarget(t *sink, h frame.Header, full bool, rep *progress.DD) error {
	if h.SourceSize < 0 && !full {
		// blkcat sends these only with a known size; one without could
		// not be checked against the target before it is written.
		return fmt.Errorf("a delta or resumed stream must declare its source size; this one does not (source size -1); nothing was written to %s", ddmsg.Quote(t.Name))
	}
	if t.F == nil || !t.seekable || h.SourceSize < 0 {
		return nil
	}
	var size int64
	if t.IsBlock {
		s, err := blockdev.Size(t.F)
		if err != nil {
			return nil
		}
		size = s
	} else {
		fi, err := t.F.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		size = fi.Size()
		if t.fresh {
			return nil // truncated to the source's size
		}
		if h.Delta() && size < h.SourceSize {
			return fmt.Errorf("target is smaller than the source: %s holds %d bytes, the delta stream's source is %d bytes; nothing was written", ddmsg.Quote(t.Name), size, h.SourceSize)
		}
	}
	if size > h.SourceSize {
		rep.Note(fmt.Sprintf("%s is %d bytes, larger than the source (%d bytes); its last %d bytes are left as they are",
			ddmsg.Quote(t.Name), size, h.SourceSize, size-h.SourceSize))
	}
	return nil
}

// explainDigest says what a digest mismatch means for a stream with gaps,
// whose unchanged blocks blkwrite read back from the target.
func explainDigest(h frame.Header, name, first string, rep *progress.DD) {
	if first != "" {
		rep.Diagnose(first)
	}
	switch {
	case h.Delta():
		rep.Diagnose(fmt.Sprintf("the blocks the delta stream left out are not on %s as their sums said (did it change after blkcat --sums read it?): take the sums again, or make a full copy", ddmsg.Quote(name)))
	case h.StartOffset > 0:
		rep.Diagnose(fmt.Sprintf("the first %d bytes of %s are not the source's (did it change since the interrupted copy?): make a full copy", h.StartOffset, ddmsg.Quote(name)))
	}
}
