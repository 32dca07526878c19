package receive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
	"golang.org/x/sys/unix"
)

// This file records resume points: after an fdatasync, how far a framed
// copy durably got, in the target's state file (see state.Dir).

// ResumePoint is blkwrite --resume-point DST: it prints the resume point
// recorded in dir for target of.
func ResumePoint(dir state.Dir, of string, stdout io.Writer) error {
	if of == "" {
		return ddtool.Usage("--resume-point needs the target (blkwrite --resume-point DST)")
	}
	t, err := dir.Load(of)
	if err != nil {
		return noRecord(err, "no interrupted copy to resume on", of, dir.Path(of))
	}
	_, err = fmt.Fprintln(stdout, t.String())
	return err
}

// noRecord is the error of a query about target of (--resume-point,
// --last) that failed to load of's record at path with err: when there
// is no record, "none of (no path)"; otherwise err.
func noRecord(err error, none, of, path string) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s %s (no %s)", none, ddmsg.Quote(of), path)
	}
	return err
}

// resumer records a copy's progress in the target's state file.
type resumer struct {
	dir    state.Dir
	target string
	tok    state.Token
	every  time.Duration
	rep    *progress.DD
	ssh    bool // run by sshd: the hint names ssh

	// recorded is the state a resume stream continues: begin checks
	// that the target still holds what it vouches for.
	recorded state.Token

	mu      sync.Mutex
	last    time.Time
	saved   int64
	off     bool // state writes failed: warned once, stopped
	dropped bool // dropStale removed an earlier copy's state
	// syncErr is the first failed fdatasync: no later point is recorded
	// and the copy fails (see saveLocked).
	syncErr error

	// A changed-block delta's touched leaves (changedresume.go), saved
	// with each point unless lost: a resumed delta whose file was
	// unreadable must never save a list without the earlier leaves.
	leaves     state.Leaves
	leavesLost bool
}

// newResumer checks a stream against the target's resume state before
// anything is written: a resume stream (start offset > 0) must continue the
// stream whose state is recorded, from no further than it durably got. A
// full stream starts over: its first change drops any old state
// (dropStale). Delta streams and targets blkwrite cannot read back get no
// state (nil).
func newResumer(opt Options, h frame.Header, rep *progress.DD) (*resumer, error) {
	target := opt.Ops.Of
	resume := h.StartOffset > 0
	var recorded state.Token
	if target == "" || h.Delta() && !h.Base() || h.SourceSize < 0 {
		if resume {
			return nil, errors.New("a resume stream needs of= a device or file")
		}
		return nil, nil
	}
	if resume {
		st, err := opt.State.Load(target)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("resume stream refused: no interrupted copy is recorded for %s", ddmsg.Quote(target))
		}
		if err != nil {
			return nil, err
		}
		if h.Base() || st.Changed {
			if err := checkChangedResume(st, h, target); err != nil { // changedresume.go
				return nil, err
			}
		} else if st.ID != h.StreamID || st.Size != h.SourceSize {
			return nil, fmt.Errorf("resume stream refused: it continues stream %x of a %d-byte source, but %s was interrupted in stream %x of a %d-byte source; nothing was written",
				h.StreamID, h.SourceSize, ddmsg.Quote(target), st.ID, st.Size)
		}
		if h.StartOffset > st.Offset {
			return nil, fmt.Errorf("resume stream refused: it starts at byte %d, but %s is only known good up to byte %d; nothing was written", h.StartOffset, ddmsg.Quote(target), st.Offset)
		}
		recorded = st
	}
	tok := state.Token{ID: h.StreamID, Offset: h.StartOffset, Size: h.SourceSize}
	if h.Base() {
		tok.Changed, tok.BaseRoot, tok.Applied = true, h.BaseDigest, recorded.Applied
	}
	r := &resumer{dir: opt.State, target: target, tok: tok,
		recorded: recorded, every: opt.ResumeEvery, rep: rep, ssh: opt.SSH, last: time.Now(), saved: h.StartOffset}
	if h.Base() && resume {
		l, err := opt.State.LoadLeaves(target)
		r.leaves, r.leavesLost = l, err != nil
	}
	return r, nil
}

// begin is called once the target is open and checked, before anything is
// written: a resume stream is refused unless t still holds what the
// recorded point vouches for (the same sample of blocks as when it was
// recorded), so that a target replaced, shortened or rewritten since the
// interruption is not written to and found wrong only at the end. A state
// from before the sample is left to END's digest. A nil resumer does
// nothing.
func (r *resumer) begin(t *sink) error {
	if r == nil || r.tok.Offset <= 0 || !r.recorded.HasSample {
		return nil
	}
	got, err := state.Sample(t.F, r.recorded.Offset)
	switch {
	case err != nil:
		return fmt.Errorf("resume stream refused: %s no longer holds the %d bytes the interrupted copy wrote (%v; replaced or shortened since?): make a full copy; nothing was written",
			ddmsg.Quote(r.target), r.recorded.Offset, err)
	case got != r.recorded.Sample:
		return fmt.Errorf("resume stream refused: %s changed since the interrupted copy (sampled blocks of its first %d bytes differ; replaced or written since?): make a full copy; nothing was written",
			ddmsg.Quote(r.target), r.recorded.Offset)
	}
	return nil
}

// dropStale is called before a full stream first changes the target: the
// point an earlier copy recorded means nothing from then on. Until then it
// stays, so a full stream that fails before its first record (a sender
// that died, a stalled one stopped with SIGTERM) does not cost the
// interrupted copy its resume point. A nil resumer does nothing.
func (r *resumer) dropStale() error {
	if r == nil || r.tok.Offset > 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return nil
	}
	r.dropped = true
	if err := r.dir.Remove(r.target); err != nil {
		return fmt.Errorf("remove stale resume state: %w", err)
	}
	return nil
}

// advance notes that the target holds the source up to pos; every few
// seconds it makes that durable and records it. It returns the error of a
// failed fdatasync, which must end the copy. A nil resumer does nothing.
// This method is concurrency-safe.
func (r *resumer) advance(t *sink, rec frame.Record) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok.Changed {
		r.applied(rec)
		if rec.Length > 0 {
			r.leaves.Add(rec.Offset/digest.LeafSize, (rec.Offset+rec.Length-1)/digest.LeafSize)
		}
	}
	r.tok.Offset = rec.Offset + rec.Length
	if time.Since(r.last) >= r.every {
		r.saveLocked(t)
	}
	return r.syncErr
}

// save makes the progress so far durable and records it (after a failure
// or an interrupt), and tells the user how to carry on.
func (r *resumer) save(t *sink) {
	r.record(t)
	r.announce()
}

// record makes the progress so far durable and records it, without a
// word: after a dropped connection, stderr is the dead ssh session's too,
// and blkwrite's first message there ends it with SIGPIPE, so the point is
// recorded before anything is said.
func (r *resumer) record(t *sink) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saveLocked(t)
}

// resumable reports whether a resume point is recorded (a nil resumer
// records none).
func (r *resumer) resumable() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.off && r.saved > 0
}

// announce tells the user where a resumed copy would start, if a point is
// recorded.
func (r *resumer) announce() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.off && r.saved > 0 {
		how := fmt.Sprintf("blkcat --resume \"$(blkwrite --resume-point %s)\" SRC | blkwrite %s", r.target, r.target)
		if r.tok.Changed {
			how = fmt.Sprintf("blkcat --changed-from BASE --resume \"$(blkwrite --resume-point %s)\" SNAP | blkwrite %s", r.target, r.target)
		}
		if r.ssh && r.tok.Changed {
			how = fmt.Sprintf("blkcat --changed-from BASE --resume \"$(ssh HOST blkwrite --resume-point %s)\" SNAP | ssh HOST blkwrite %s", r.target, r.target)
		} else if r.ssh {
			// Run by sshd (`blkcat ... | ssh HOST blkwrite DST`): this
			// line is read on the sending host, where the command
			// without ssh would look for the point, and write, there.
			how = fmt.Sprintf("blkcat --resume \"$(ssh HOST blkwrite --resume-point %s)\" SRC | ssh HOST blkwrite %s", r.target, r.target)
		}
		r.rep.Diagnose(fmt.Sprintf("resume point saved at byte %d of %d: %s", r.saved, r.tok.Size, how))
	}
}

func (r *resumer) saveLocked(t *sink) {
	r.last = time.Now()
	if r.off || r.syncErr != nil || r.tok.Offset == r.saved {
		return
	}
	// ZERO runs on a fresh file are holes that need not reach its end:
	// give the file the length the state vouches for, so that a resumed
	// stream can read it back.
	if !t.IsBlock {
		if fi, err := t.F.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < r.tok.Offset {
			if err := t.F.Truncate(r.tok.Offset); err != nil {
				return
			}
		}
	}
	if err := t.Fdatasync(); err != nil && !errors.Is(err, unix.EINVAL) {
		// The data is not known durable: keep the old point, and
		// record no later one. Linux reports a writeback error once
		// per open file, so the next fdatasync (here, or the final one
		// before "verified") would succeed with the data lost: the
		// copy must fail now.
		r.syncErr = err
		return
	}
	r.tok.Sample, r.tok.HasSample = 0, false
	if v, err := state.Sample(t.F, r.tok.Offset); err == nil {
		r.tok.Sample, r.tok.HasSample = v, true
	}
	r.saveLeaves(t) // changedresume.go; before the point it goes with
	if err := r.dir.Save(r.target, r.tok); err != nil {
		r.off = true
		r.rep.Diagnose("warning: cannot record the resume point (set BLKPIPE_STATE_DIR?): " + err.Error())
		return
	}
	r.saved = r.tok.Offset
}

// done removes the state after a verified copy.
func (r *resumer) done() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off = true
	r.dir.Remove(r.target)
}
