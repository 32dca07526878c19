package receive

import (
	"encoding/hex"
	"fmt"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// This file is the receiving side of a resumed changed-block delta
// (blkcat --changed-from BASE --resume TOKEN SNAP): the resume point of
// such a delta also records the base's root and the Applied sum of the
// blocks written before it, and a resumed stream must continue exactly
// that stream from exactly that point. Its digest is checked by reading
// the whole target back: the kept map was dropped when the interrupted
// delta first wrote, so the leaves it changed before the point are
// rehashed with all the others.

// checkChangedResume refuses, before anything is written, a stream with
// start offset > 0 that does not continue the changed-block delta whose
// resume point st is recorded for target.
func checkChangedResume(st state.Token, h frame.Header, target string) error {
	refuse := func(why string) error {
		return fmt.Errorf("resume stream refused: %s; nothing was written to %s", why, ddmsg.Quote(target))
	}
	switch {
	case !h.Base():
		return refuse(fmt.Sprintf("it continues a full copy (stream %x), but the interrupted stream was a changed-block delta", h.StreamID))
	case !st.Changed:
		return refuse(fmt.Sprintf("it continues a changed-block delta (stream %x), but the interrupted stream was a full copy", h.StreamID))
	case st.ID != h.StreamID || st.Size != h.SourceSize:
		return refuse(fmt.Sprintf("it continues stream %x of a %d-byte source, but the interrupted delta was stream %x of a %d-byte source", h.StreamID, h.SourceSize, st.ID, st.Size))
	case st.BaseRoot != h.BaseDigest:
		return refuse(fmt.Sprintf("it is a delta against base %s, but the interrupted delta was against %s", hex.EncodeToString(h.BaseDigest[:]), hex.EncodeToString(st.BaseRoot[:])))
	case h.StartOffset != st.Offset:
		return refuse(fmt.Sprintf("it starts at byte %d, but the interrupted delta durably stopped at byte %d (take the resume point again)", h.StartOffset, st.Offset))
	}
	return nil
}

// applied adds the blocks of rec, just written, to the token's Applied
// sum. Called with r.mu held.
func (r *resumer) applied(rec frame.Record) {
	a := state.Applied(r.tok.Applied)
	switch rec.Type {
	case frame.Data:
		a.Add(rec.Offset, rec.Data)
	case frame.Zero:
		a.AddZero(rec.Offset, rec.Length)
	}
	r.tok.Applied = uint64(a)
}
