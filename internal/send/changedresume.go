package send

import (
	"encoding/hex"
	"fmt"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// This file is blkcat --changed-from BASE --resume TOKEN SNAP: the rest of
// an interrupted changed-block delta. blkwrite's resume point names the
// stream, where its last durably applied record ends, BASE's root, a
// sample of the target's bytes before that point and the Applied sum of
// the blocks it wrote there. The sender reads SNAP's changed leaves as
// for a whole delta (END still carries SNAP's root), checks that the
// blocks it would have sent before the point are the ones blkwrite
// applied, and only then starts the stream: the same stream id, the
// start offset at the point, and only the records from there on.

// changedResume parses and checks opt.Resume for a changed-block delta of
// in (size bytes): nil when there is none to resume.
func changedResume(opt Options, in *ddcopy.Input, size int64) (*state.Token, error) {
	if opt.Resume == "" {
		return nil, nil
	}
	tok, err := state.ParseToken(opt.Resume)
	if err != nil {
		return nil, ddtool.Usage(fmt.Sprintf("invalid --resume token '%s': %v", opt.Resume, err))
	}
	if !tok.Changed {
		return nil, fmt.Errorf("resume point '%s' is of a full copy, not of a changed-block delta (resume it with blkcat --resume TOKEN SRC, without --changed-from); nothing was sent", opt.Resume)
	}
	if tok.Size != size {
		return nil, fmt.Errorf("resume point is for a %d-byte source, %s is %d bytes: it belongs to another copy; nothing was sent", tok.Size, ddmsg.Quote(in.Name), size)
	}
	got, err := state.Sample(in.F, tok.Offset)
	if err != nil {
		return nil, &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(in.Name), Err: err}
	}
	if got != tok.Sample {
		return nil, fmt.Errorf("resume point does not match %s: the target's first %d bytes are not this snapshot's (sampled blocks differ: another source or snapshot, or the target changed since the interrupted delta); nothing was sent",
			ddmsg.Quote(in.Name), tok.Offset)
	}
	return &tok, nil
}

// checkResumeBase refuses a resume point whose delta was made against
// another base than BASE (root, BASE's root from its kept map).
func checkResumeBase(tok *state.Token, base string, root [32]byte) error {
	if tok == nil || tok.BaseRoot == root {
		return nil
	}
	return fmt.Errorf("resume point is of a delta against a base with blake3 %s, but base %s has blake3 %s: another base; nothing was sent",
		hex.EncodeToString(tok.BaseRoot[:]), ddmsg.Quote(base), hex.EncodeToString(root[:]))
}

// writer returns the stream's RecordWriter, starting the stream on the
// first call. When resuming, every block before the resume point has
// been seen by then: their Applied sum must be the one blkwrite recorded,
// or nothing is sent.
func (s *changedSender) writer() (*frame.RecordWriter, error) {
	if s.rw != nil {
		return s.rw, nil
	}
	opts := s.opts
	if tok := s.resume; tok != nil {
		if uint64(s.applied) != tok.Applied {
			return nil, fmt.Errorf("resume point does not match %s: the blocks the interrupted delta wrote before byte %d are not this snapshot's (another snapshot, or its first %d bytes changed since); nothing was sent",
				ddmsg.Quote(s.name), tok.Offset, tok.Offset)
		}
		opts = append(opts, frame.WithStartOffset(tok.Offset), frame.WithStreamID(tok.ID))
	}
	rw, err := frame.NewRecordWriter(s.out, opts...)
	if err != nil {
		return nil, ddtool.Usage(err.Error())
	}
	s.rw = rw
	return rw, nil
}

// from is where the records sent start: the resume point, or 0.
func (s *changedSender) from() int64 {
	if s.resume == nil {
		return 0
	}
	return s.resume.Offset
}
