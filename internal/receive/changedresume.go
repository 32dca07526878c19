package receive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// This file is the receiving side of a resumed changed-block delta
// (blkcat --changed-from BASE --resume TOKEN SNAP): the resume point of
// such a delta also records the base's root and the Applied sum of the
// blocks written before it, and a resumed stream must continue exactly
// that stream from exactly that point. Its digest is checked by reading
// the whole target back, so the leaves it changed before the point are
// rehashed with all the others — unless the interrupted delta set the
// base's kept state aside and the target was not written since its last
// point: then the leaves it wrote (recorded with each point) are rehashed
// from the target into the base's map, and the stream's leaves as for any
// delta verified from the map.

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

// saveLeaves saves the touched leaves with the target's identity, taken
// after the fdatasync that made them durable (a changed-block delta only).
// A list that lost earlier leaves is removed instead, so that a resumed
// delta reads the whole target back. Called with r.mu held.
func (r *resumer) saveLeaves(t *sink) {
	if !r.tok.Changed {
		return
	}
	if r.leavesLost {
		os.Remove(r.dir.LeavesPath(r.target))
		return
	}
	// On an error Identify returns the zero ID, whose empty Stamp never
	// matches: the resumed delta reads the target back.
	id, _ := state.Identify(t.F)
	r.leaves.Dev, r.leaves.Ino, r.leaves.Stamp = id.Dev, id.Ino, id.Stamp
	if err := r.dir.SaveLeaves(r.target, r.leaves); err != nil {
		os.Remove(r.dir.LeavesPath(r.target))
	}
}

// useAside is useMap for a resumed changed-block delta: the base's kept
// state the interrupted delta set aside, provided the target was not
// written since its last point (identity and Stamp as recorded with the
// touched leaves), with those leaves rehashed from the target, and their
// block sums taken again, before the stream's own.
func (k *keeper) useAside(t *sink, r *resumer) error {
	switch {
	case r == nil || !r.tok.Changed:
		return errors.New("no resume state")
	case r.leavesLost:
		return errors.New("the leaves the interrupted delta wrote are not recorded")
	}
	id, err := state.Identify(t.F)
	if err != nil {
		return err
	}
	if l := r.leaves; l.Stamp == "" || l.Dev != id.Dev || l.Ino != id.Ino || l.Stamp != id.Stamp {
		return errors.New("it was written since the interrupted delta's last resume point")
	}
	kept, b, err := k.dir.KeptAside(k.of)
	if err != nil {
		return err
	}
	if err := k.adopt(t, keptFrom(kept, b)); err != nil {
		return err
	}
	if err := k.rehash(r.leaves.Ranges); err != nil {
		k.unadopt()
		return err
	}
	k.startLeaves()
	return nil
}

// rehashRead is how many leaves rehash reads from the target at a time.
const rehashRead = 64 // 4 MiB

// rehash sets the chaining values and block sums of the leaves in ranges
// from the target's bytes, read up to rehashRead leaves at a time.
func (k *keeper) rehash(ranges [][2]int64) error {
	buf := make([]byte, rehashRead*digest.LeafSize)
	last := (k.size - 1) / digest.LeafSize // the source's last leaf
	for _, rg := range ranges {
		for i := rg[0]; i <= rg[1]; {
			if i*digest.LeafSize >= k.size {
				return fmt.Errorf("touched leaf %d is beyond the source", i)
			}
			j := min(rg[1], last, i+rehashRead-1)
			p := buf[:j*digest.LeafSize+k.leafLen(j)-i*digest.LeafSize]
			if _, err := k.rf.ReadAt(p, i*digest.LeafSize); err != nil {
				// Leaf by leaf, to name the leaf that cannot be read.
				if err := k.rehashLeaves(i, j); err != nil {
					return err
				}
			} else {
				for l := i; l <= j; l++ {
					q := p[(l-i)*digest.LeafSize:][:k.leafLen(l)]
					k.sum(q, l*digest.LeafSize)
					k.tree.Set(l, digest.LeafCV(q, l))
				}
			}
			i = j + 1
		}
	}
	return nil
}

// rehashLeaves is rehash of leaves i to j, each read on its own.
func (k *keeper) rehashLeaves(i, j int64) error {
	buf := make([]byte, digest.LeafSize)
	for ; i <= j; i++ {
		p := buf[:k.leafLen(i)]
		if _, err := k.rf.ReadAt(p, i*digest.LeafSize); err != nil {
			return fmt.Errorf("read leaf %d of %s: %w", i, ddmsg.Quote(k.of), err)
		}
		k.sum(p, i*digest.LeafSize)
		k.tree.Set(i, digest.LeafCV(p, i))
	}
	return nil
}
