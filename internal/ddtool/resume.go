package ddtool

import (
	"errors"
	"fmt"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// This file is blkwrite's side of resume: a small state file per target
// recording, after an fdatasync, how far a framed copy durably got.

// DefaultStateDir holds blkwrite's resume state unless $BLKPIPE_STATE_DIR.
const DefaultStateDir = "/var/lib/blkpipe"

// DefaultResumeEvery is how often blkwrite makes the target durable and
// records progress, unless $BLKPIPE_RESUME_EVERY (a Go duration) says.
const DefaultResumeEvery = 2 * time.Second

const stateMagic = "blkpipe-resume 1"

// statePath is the state file for target: its absolute path escaped into
// one file name in the state directory.
func statePath(target string) string {
	dir := os.Getenv("BLKPIPE_STATE_DIR")
	if dir == "" {
		dir = DefaultStateDir
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		abs = target
	}
	var b strings.Builder
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.' && i > 0, c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return filepath.Join(dir, b.String()+".resume")
}

// loadState reads target's resume state; it returns os.ErrNotExist when
// there is none.
func loadState(target string) (Token, error) {
	b, err := os.ReadFile(statePath(target))
	if err != nil {
		return Token{}, err
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(b)), stateMagic+" ")
	if !ok {
		return Token{}, fmt.Errorf("resume state %s is damaged", statePath(target))
	}
	t, err := ParseToken(line)
	if err != nil {
		return Token{}, fmt.Errorf("resume state %s is damaged: %v", statePath(target), err)
	}
	return t, nil
}

// writeState replaces target's state atomically: temp file, fsync, rename,
// fsync of the directory.
func writeState(target string, t Token) error {
	path := statePath(target)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".resume-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(stateMagic + " " + t.String() + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		if d, derr := os.Open(dir); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	return err
}

// printResumePoint is blkwrite --resume-point TARGET.
func printResumePoint(opt *Options, stdout io.Writer) error {
	if opt.Ops.Of == "" {
		return &usageError{"--resume-point needs the target (blkwrite --resume-point DST)"}
	}
	t, err := loadState(opt.Ops.Of)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no interrupted copy to resume on %s (no %s)", ddmsg.Quote(opt.Ops.Of), statePath(opt.Ops.Of))
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, t.String())
	return err
}

// resumer records a copy's progress in the target's state file.
type resumer struct {
	target string
	tok    Token
	every  time.Duration
	rep    *progress.DD

	// recorded is the state a resume stream continues: begin checks
	// that the target still holds what it vouches for.
	recorded Token

	mu      sync.Mutex
	last    time.Time
	saved   int64
	off     bool // state writes failed: warned once, stopped
	dropped bool // dropStale removed an earlier copy's state
	// syncErr is the first failed fdatasync: no later point is recorded
	// and the copy fails (see saveLocked).
	syncErr error
}

// newResumer checks a stream against the target's resume state before
// anything is written: a resume stream (start offset > 0) must continue the
// stream whose state is recorded, from no further than it durably got. A
// full stream starts over: its first change drops any old state
// (dropStale). Delta streams and targets blkwrite cannot read back get no
// state (nil).
func newResumer(opt *Options, h frame.Header, rep *progress.DD) (*resumer, error) {
	target := opt.Ops.Of
	resume := h.StartOffset > 0
	var recorded Token
	if target == "" || h.Delta() || h.SourceSize < 0 {
		if resume {
			return nil, errors.New("a resume stream needs of= a device or file")
		}
		return nil, nil
	}
	if resume {
		st, err := loadState(target)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("resume stream refused: no interrupted copy is recorded for %s", ddmsg.Quote(target))
		}
		if err != nil {
			return nil, err
		}
		if st.ID != h.StreamID || st.Size != h.SourceSize {
			return nil, fmt.Errorf("resume stream refused: it continues stream %x of a %d-byte source, but %s was interrupted in stream %x of a %d-byte source; nothing was written",
				h.StreamID, h.SourceSize, ddmsg.Quote(target), st.ID, st.Size)
		}
		if h.StartOffset > st.Offset {
			return nil, fmt.Errorf("resume stream refused: it starts at byte %d, but %s is only known good up to byte %d; nothing was written", h.StartOffset, ddmsg.Quote(target), st.Offset)
		}
		recorded = st
	}
	every := DefaultResumeEvery
	if v := os.Getenv("BLKPIPE_RESUME_EVERY"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			every = d
		}
	}
	return &resumer{target: target, tok: Token{ID: h.StreamID, Offset: h.StartOffset, Size: h.SourceSize},
		recorded: recorded, every: every, rep: rep, last: time.Now(), saved: h.StartOffset}, nil
}

// begin is called once the target is open and checked, before anything is
// written: a resume stream is refused unless t still holds what the
// recorded point vouches for (the same sample of blocks as when it was
// recorded), so that a target replaced, shortened or rewritten since the
// interruption is not written to and found wrong only at the end. A state
// from before the sample is left to END's digest. A nil resumer does
// nothing.
func (r *resumer) begin(t *target) error {
	if r == nil || r.tok.Offset <= 0 || !r.recorded.HasSample {
		return nil
	}
	got, err := prefixSample(t.f, r.recorded.Offset)
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
	if err := os.Remove(statePath(r.target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale resume state: %w", err)
	}
	return nil
}

// advance notes that the target holds the source up to pos; every few
// seconds it makes that durable and records it. It returns the error of a
// failed fdatasync, which must end the copy. A nil resumer does nothing.
// This method is concurrency-safe.
func (r *resumer) advance(t *target, pos int64) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tok.Offset = pos
	if time.Since(r.last) >= r.every {
		r.saveLocked(t)
	}
	return r.syncErr
}

// save makes the progress so far durable and records it (after a failure
// or an interrupt), and tells the user how to carry on.
func (r *resumer) save(t *target) {
	r.record(t)
	r.announce()
}

// record makes the progress so far durable and records it, without a
// word: after a dropped connection, stderr is the dead ssh session's too,
// and blkwrite's first message there ends it with SIGPIPE, so the point is
// recorded before anything is said.
func (r *resumer) record(t *target) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saveLocked(t)
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
		if os.Getenv("SSH_CONNECTION") != "" {
			// Run by sshd (`blkcat ... | ssh HOST blkwrite DST`): this
			// line is read on the sending host, where the command
			// without ssh would look for the point, and write, there.
			how = fmt.Sprintf("blkcat --resume \"$(ssh HOST blkwrite --resume-point %s)\" SRC | ssh HOST blkwrite %s", r.target, r.target)
		}
		r.rep.Diagnose(fmt.Sprintf("resume point saved at byte %d of %d: %s", r.saved, r.tok.Size, how))
	}
}

func (r *resumer) saveLocked(t *target) {
	r.last = time.Now()
	if r.off || r.syncErr != nil || r.tok.Offset == r.saved {
		return
	}
	// ZERO runs on a fresh file are holes that need not reach its end:
	// give the file the length the state vouches for, so that a resumed
	// stream can read it back.
	if !t.isBlock {
		if fi, err := t.f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < r.tok.Offset {
			if err := t.f.Truncate(r.tok.Offset); err != nil {
				return
			}
		}
	}
	if err := blockdev.Fdatasync(t.f); err != nil && !errors.Is(err, unix.EINVAL) {
		// The data is not known durable: keep the old point, and
		// record no later one. Linux reports a writeback error once
		// per open file, so the next fdatasync (here, or the final one
		// before "verified") would succeed with the data lost: the
		// copy must fail now.
		r.syncErr = &ddmsg.Error{Msg: "fdatasync failed for " + ddmsg.Quote(t.name), Err: err}
		return
	}
	r.tok.Sample, r.tok.HasSample = 0, false
	if v, err := prefixSample(t.f, r.tok.Offset); err == nil {
		r.tok.Sample, r.tok.HasSample = v, true
	}
	if err := writeState(r.target, r.tok); err != nil {
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
	os.Remove(statePath(r.target))
}

// checkDeltaTarget refuses, before anything is written, a delta stream
// whose source is larger than a regular-file target (blocks the stream
// leaves out would be missing), and notes a target larger than the source,
// whose tail is left alone.
func checkDeltaTarget(t *target, h frame.Header, full bool, rep *progress.DD) error {
	if h.SourceSize < 0 && !full {
		// blkcat sends these only with a known size; one without could
		// not be checked against the target before it is written.
		return fmt.Errorf("a delta or resumed stream must declare its source size; this one does not (source size -1); nothing was written to %s", ddmsg.Quote(t.name))
	}
	if t.f == nil || !t.seekable || h.SourceSize < 0 {
		return nil
	}
	var size int64
	if t.isBlock {
		s, err := blockdev.Size(t.f)
		if err != nil {
			return nil
		}
		size = s
	} else {
		fi, err := t.f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		size = fi.Size()
		if t.fresh {
			return nil // truncated to the source's size
		}
		if h.Delta() && size < h.SourceSize {
			return fmt.Errorf("target is smaller than the source: %s holds %d bytes, the delta stream's source is %d bytes; nothing was written", ddmsg.Quote(t.name), size, h.SourceSize)
		}
	}
	if size > h.SourceSize {
		rep.Note(fmt.Sprintf("%s is %d bytes, larger than the source (%d bytes); its last %d bytes are left as they are",
			ddmsg.Quote(t.name), size, h.SourceSize, size-h.SourceSize))
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

// sampleBlocks is how many 4 KiB blocks prefixSample reads.
const sampleBlocks = 16

// prefixSample is the XXH3-64 of sampleBlocks 4 KiB-aligned blocks spread
// evenly over r's first n bytes, the first at 0 and none reaching past n
// (fewer, or one short block, when n is small). blkwrite records it with a resume point from the target,
// which holds the source up to n; blkcat --resume takes the same sample of
// SRC and refuses, before sending anything, a resume point that another
// source (of the same size) made. Reads are 4 KiB-aligned, so O_DIRECT
// descriptors serve; 16 reads cost nothing next to a copy.
func prefixSample(r io.ReaderAt, n int64) (uint64, error) {
	h := xxh3.New()
	buf := blockdev.AlignedBuffer(4096, 4096)
	last := int64(-1)
	for i := int64(0); i < sampleBlocks; i++ {
		var off int64
		if n > 4096 {
			off = (n - 4096) / (sampleBlocks - 1) * i &^ 4095
		}
		if off == last {
			continue
		}
		last = off
		want := min(4096, n-off)
		if want <= 0 {
			break
		}
		k, err := r.ReadAt(buf, off)
		if int64(k) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("sample %d bytes at offset %d: %w", want, off, err)
		}
		h.Write(buf[:want])
	}
	return h.Sum64(), nil
}
