package receive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/target"
)

// DefaultResumeEvery is how often blkwrite makes the target durable and
// records progress, unless $BLKPIPE_RESUME_EVERY (a Go duration) says.
const DefaultResumeEvery = 2 * time.Second

// Options are what blkwrite applies a framed stream with.
type Options struct {
	Ops                    *ddargs.Operands
	NoVerify, AssumeZeroed bool // --no-verify, --assume-zeroed
	NoAIO                  bool // BLKPIPE_AIO=0: a delta's read-back uses preads, not native AIO
	State                  state.Dir
	ResumeEvery            time.Duration // how often progress is made durable and recorded
	SSH                    bool          // run by sshd: the resume hint names ssh
	Result                 *Result       // if set, filled in for --json (result.go)
	Restrict               *Restriction  // --allow: the key's policy (see policy.go); nil otherwise
	// Preloaded is the target's kept state, if loaded before the
	// stream came (Preload); nil otherwise.
	Preloaded *Preloaded
	// Verified, if set, is told of a verified copy before Framed
	// returns: its digest algorithm, hex digest, stream id and size.
	Verified func(alg, digest, streamID string, size int64)
}

// Framed is blkwrite receiving a framed stream: it validates the header
// before touching the target, writes every record at its offset, zeroes
// ZERO runs, checks every checksum and the whole-source SHA-256, makes the
// target durable, and only then reports success.
func Framed(ctx context.Context, opt Options, in *ddcopy.Input, stdout *os.File, rep *progress.DD, usr1 <-chan os.Signal) error {
	ops := opt.Ops
	if ops.Seek != 0 || ops.Skip != 0 || ops.Count >= 0 || ops.Conv.Sparse || ops.OFlag.Append {
		return ddtool.Usage("a framed stream places its own data: seek=, skip=, count=, conv=sparse and oflag=append do not apply (use --raw to copy the stream itself)")
	}
	if in.Direct {
		// iflag=direct: the Reader's small unaligned reads of a kept
		// stream file would fail with EINVAL.
		blockdev.SetDirect(in.F, false)
		in.Direct = false
	}
	var src io.Reader = in.F
	if in.R != nil {
		src = in.R
	}
	ahead := newAheadReader(src) // reads ahead once the stream is a delta
	defer ahead.close()
	src = ahead
	base := &lazyReaderAt{ready: make(chan struct{})}
	defer base.set(nil, nil, nil)
	defer base.close()
	ropts := append([]frame.ReaderOption{frame.WithVerify(!opt.NoVerify)}, opt.Restrict.readerOptions(ops.Of)...)
	if !opt.NoVerify {
		ropts = append(ropts, frame.WithBase(base), frame.WithLeaves())
	}
	var fr *frame.Reader
	err := ddtool.Interruptible(ctx, func() (err error) {
		fr, err = frame.NewReader(src, ropts...)
		return err
	})
	if err == ddtool.ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if errors.Is(err, frame.ErrVersion) {
		// The stream came from another build, typically over ssh from a
		// host upgraded before this one: say which tools to line up.
		return fmt.Errorf("%s: %w: blkcat on the sending side and this blkwrite are different blkpipe versions (see their --version); install the same version on both hosts", ddmsg.Quote(in.Name), err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ddmsg.Quote(in.Name), err)
	}
	defer fr.Close()
	h := fr.Header()
	if h.Delta() {
		ahead.start()
	}
	opt.Result.header(h)
	full := !h.Delta() && h.StartOffset == 0
	if err := opt.Restrict.checkHeader(h, ddtool.OutputName(ops)); err != nil {
		return err
	}
	if opt.AssumeZeroed && h.Delta() {
		// A delta's target holds the previous copy: a ZERO record there
		// replaces data, and skipping it would leave the old block while
		// the digest, which counts the record as zeros, still verifies.
		return ddtool.Usage(fmt.Sprintf("--assume-zeroed does not apply to a delta stream: its ZERO records replace blocks that hold data on %s; nothing was written", ddmsg.Quote(ddtool.OutputName(ops))))
	}

	rs, err := newResumer(opt, h, rep)
	if err != nil {
		return err
	}
	t, err := openSink(opt, h, full, stdout)
	if err != nil {
		return err
	}
	defer t.F.Close()
	if err := opt.Restrict.verify(t.F); err != nil {
		return err
	}
	if opt.Restrict != nil {
		t.check = func(rec frame.Record) error { return opt.Restrict.checkRecord(h, rec) }
	}
	if !t.seekable {
		rs = nil // of=/dev/null or a pipe: nothing to resume onto
	} else if h.Delta() && rs == nil {
		t.dropState = ops.Of
	}
	if err := checkDeltaTarget(t, h, full, rep); err != nil {
		base.set(nil, nil, nil)
		return err
	}
	if h.StartOffset > 0 {
		// A resumed changed-block delta: newResumer checked its base
		// against the resume point (the copy record went when the
		// interrupted delta first wrote).
	} else if err := checkBase(opt, t, h, rep); err != nil {
		return err
	}
	k := newKeeper(opt, h, t)
	defer k.close()
	t.keep, t.keepOf = k, ops.Of
	if k != nil && h.Delta() && h.StartOffset > 0 {
		if err := k.useAside(t, rs); err != nil { // changedresume.go
			rep.Note(fmt.Sprintf("a resumed delta: verifying by reading all of %s back (%v)", ddmsg.Quote(ops.Of), err))
		} else {
			base.noBase = true
		}
	} else if k != nil && h.Delta() {
		if err := k.useMap(t, h, opt.Preloaded); err != nil {
			rep.Diagnose(fmt.Sprintf("no valid digest map for %s (%v): verifying by reading the whole target", ddmsg.Quote(ops.Of), err))
		} else {
			base.noBase = true
			// A changed-block delta keeps the map it verifies from
			// with its resume state, for a resumed delta to use.
			t.keepAside = rs != nil && h.Base()
		}
	}
	base.set(t.F, opt.State.OpenSidecar(opt.Ops.Of, h), k)
	if err := rs.begin(t); err != nil {
		return err
	}
	t.resume = rs

	defer ddtool.ReportOnSignal(rep, usr1)()
	rep.Restart(time.Now())
	result := make(chan error, 1)
	var end frame.Record
	go func() { result <- t.apply(fr, rep, &end) }()
	select {
	case err = <-result:
	case <-ctx.Done():
		idle := IdleCause(ctx)
		if idle != nil {
			rep.Diagnose(idle.Error())
		}
		// apply may still be writing a record: say what is known to
		// have landed (the counter lags it by at most that record).
		rs.record(t)
		if t.touched.Load() {
			rep.Diagnose(target.Incomplete(rep.C.Bytes.Load(), t.Name))
			if h.Delta() && !rs.resumable() {
				rep.Diagnose(deltaAgain(t.Name))
			}
		}
		rs.announce()
		rep.Report(time.Now())
		if idle != nil {
			return ddtool.Reported(idle)
		}
		return ddtool.ErrInterrupted
	}
	if err == nil {
		err = k.verify(&end)
	}
	saving := k.startSave(h, fr, end) // while the target is made durable
	defer saving.wait()
	if err == nil {
		err = t.finish(end)
	}
	if err != nil {
		digestErr := errors.Is(err, frame.ErrDigest)
		if !digestErr {
			// Before any message: a stream cut by a dropped connection
			// leaves stderr dead too (see record).
			rs.record(t)
		}
		rep.Diagnose(err.Error())
		if t.touched.Load() {
			rep.Diagnose(target.Incomplete(t.written, t.Name))
		}
		if digestErr {
			explainDigest(h, t.Name, base.explain(t.Name), rep)
			rs.done() // the target is not the source: nothing to resume
		} else {
			if h.Delta() && t.touched.Load() && !rs.resumable() {
				rep.Diagnose(deltaAgain(t.Name))
			}
			rs.announce()
		}
		rep.Report(time.Now())
		return ddtool.Reported(err)
	}
	rs.done()
	if err := k.save(t, saving); err != nil {
		rep.Diagnose(fmt.Sprintf("warning: could not keep the copy record and digest map of %s in %s: %v", ddmsg.Quote(ops.Of), opt.State.CopyPath(ops.Of), err))
	}
	rep.Report(time.Now())
	opt.Result.end(end)
	digest := hex.EncodeToString(end.Digest[:])
	if end.Verified && opt.AssumeZeroed {
		// The digest covers the stream; the ZERO runs it skipped were
		// never read back from the target.
		rep.Diagnose("verified stream; zero runs not written (--assume-zeroed): " + h.DigestAlg.String() + " " + digest)
	} else if end.Verified {
		if opt.Verified != nil {
			opt.Verified(h.DigestAlg.String(), digest, hex.EncodeToString(h.StreamID[:]), h.SourceSize)
		}
		rep.Diagnose("verified " + h.DigestAlg.String() + " " + digest)
	} else {
		rep.Diagnose(h.DigestAlg.String() + " " + digest + " NOT verified (--no-verify)")
	}
	return nil
}

// deltaAgain is what blkwrite says after a delta that changed the target
// failed: a delta records no resume point, but running it again sends
// what is still missing.
func deltaAgain(name string) string {
	return fmt.Sprintf("a delta cannot be resumed: run it again, with new sums of %s, to finish the copy", ddmsg.Quote(name))
}

// lazyReaderAt reads the target once it is open, so the stream's header
// can be checked before the target is. The Reader's goroutines may ask for
// a gap before that (a delta stream's first record is rarely at offset 0):
// ReadAt waits until set is called.
type lazyReaderAt struct {
	once  sync.Once
	ready chan struct{}
	f     *os.File
	ahead *readAhead // set by set when the target can be read ahead
	// noBase: the delta is verified from the digest map, and the
	// Reader is told so on its first gap (frame.ErrNoBase). Set before
	// set.
	noBase bool
}

// set gives the target (nil: it will not be opened), its sums sidecar and
// the keeper that sums what is read (both may be nil); only the first call
// counts.
func (l *lazyReaderAt) set(f *os.File, side *state.SidecarCheck, k *keeper) {
	l.once.Do(func() {
		l.f = f
		if f != nil {
			l.ahead = newReadAhead(f)
			l.ahead.side, l.ahead.keep = side, k
		}
		close(l.ready)
	})
}

// explain names the first gap block that differs from the target's sums
// sidecar, if one was found.
func (l *lazyReaderAt) explain(name string) string {
	select {
	case <-l.ready:
		if l.ahead != nil {
			return l.ahead.side.Explain(name)
		}
	default:
	}
	return ""
}

// close releases the read-ahead descriptor, once the Reader is done.
func (l *lazyReaderAt) close() {
	select {
	case <-l.ready:
		l.ahead.close()
	default:
	}
}

func (l *lazyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	<-l.ready
	if l.noBase {
		return 0, frame.ErrNoBase
	}
	if l.f == nil {
		return 0, errors.New("target not open")
	}
	if l.ahead != nil {
		return l.ahead.ReadAt(p, off)
	}
	return l.f.ReadAt(p, off)
}
