package ddtool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"golang.org/x/sys/unix"
)

// newFrameWriter sets up blkcat --frame: the copier's output becomes the
// source of a framed stream written to the real output.
func newFrameWriter(opt *Options, c *ddcopy.Copier) (*frame.Writer, error) {
	size := streamSize(c)
	fopts := []frame.WriterOption{frame.WithCodec(opt.Codec, opt.Level)}
	if size >= 0 {
		fopts = append(fopts, frame.WithSourceSize(size))
	}
	fw, err := frame.NewWriter(c.Out.F, fopts...)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	return fw, nil
}

// streamSize is the number of bytes the copier will read, or -1 when that
// is not known in advance.
func streamSize(c *ddcopy.Copier) int64 {
	size := int64(-1)
	if c.P.Text.Active() {
		return -1 // conv=block and unblock change the length
	}
	if c.In.Seekable && c.In.Size >= 0 {
		skip, ok := c.P.SkipOffset()
		if !ok {
			return -1 // the copy fails: cannot skip
		}
		size = max(c.In.Size-skip, 0)
		if limit := c.P.CountLimit(); limit >= 0 {
			size = min(size, limit)
		}
		if c.P.Sync && size%int64(c.P.IBS) != 0 {
			size += int64(c.P.IBS) - size%int64(c.P.IBS)
		}
	}
	return size
}

// detectFramed tells whether the input starts with a framed stream's
// magic, whether it is empty, and whether it is cut inside the magic (all
// of it, one to seven bytes, is the magic's start: a sender that died in
// its first write), without losing a byte or changing what dd's reads
// would see: a seekable input is peeked with pread; from a stream
// blkwrite reads once (more only while the bytes so far could still be
// the magic), and the copy then gets exactly those bytes as its first
// read. That read asks for what dd's first read would (ibs bytes, at
// least the magic's length, at most 64 MiB), so the records it makes are
// dd's: a read of 64 KiB made a short record of a larger ibs from
// /dev/urandom ("2+1 records in" for bs=1M count=3). A character device
// that can seek (/dev/zero) is read and seeked back instead, so that
// skip= still seeks on it as dd's does.
func detectFramed(in *ddcopy.Input, ibs int) (framed, empty, cut bool, err error) {
	if in.Seekable && in.Size >= 0 {
		cur, err := in.F.Seek(0, io.SeekCurrent)
		if err != nil {
			return false, false, false, nil
		}
		buf := blockdev.AlignedBuffer(4096, 4096)
		n, err := in.F.ReadAt(buf, cur-cur%4096)
		if err != nil && err != io.EOF {
			return false, false, false, nil // the copy will meet the error and report it as dd does
		}
		rel := int(cur % 4096)
		got := buf[rel:max(n, rel)]
		return len(got) >= len(frame.Magic) && string(got[:len(frame.Magic)]) == frame.Magic, len(got) == 0 && err == io.EOF,
			err == io.EOF && isMagicCut(got), nil
	}
	size := (len(frame.Magic) + ibs - 1) / ibs * ibs
	if size > 64<<20 {
		size = 64 << 20
	}
	buf := make([]byte, size)
	n := 0
	var rerr error
	var back int64 = -1
	if fi, err := in.F.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		if cur, err := in.F.Seek(0, io.SeekCurrent); err == nil {
			back = cur
		}
	}
	for {
		m, err := in.F.Read(buf[n:])
		n += m
		if err != nil {
			rerr = err
			break
		}
		if n >= len(frame.Magic) || !strings.HasPrefix(frame.Magic, string(buf[:n])) {
			break
		}
	}
	if back < 0 || rerr != nil && rerr != io.EOF {
		in.R = &prefixReader{pre: buf[:n], err: rerr, r: in.F}
	} else if _, err := in.F.Seek(back, io.SeekStart); err != nil {
		in.R = &prefixReader{pre: buf[:n], err: rerr, r: in.F}
	}
	return n >= len(frame.Magic) && string(buf[:len(frame.Magic)]) == frame.Magic, n == 0 && rerr == io.EOF,
		rerr == io.EOF && isMagicCut(buf[:n]), nil
}

// isMagicCut reports whether b is a proper, non-empty start of the magic.
func isMagicCut(b []byte) bool {
	return len(b) > 0 && len(b) < len(frame.Magic) && strings.HasPrefix(frame.Magic, string(b))
}

// prefixReader returns bytes already read from r (as one read), then the
// error that read met, then reads r.
type prefixReader struct {
	pre []byte
	err error
	r   io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	if p.err != nil {
		err := p.err
		p.err = nil
		return 0, err
	}
	return p.r.Read(b)
}

// runFramed is blkwrite receiving a framed stream: it validates the header
// before touching the target, writes every record at its offset, zeroes
// ZERO runs, checks every checksum and the whole-source SHA-256, makes the
// target durable, and only then reports success.
func runFramed(ctx context.Context, p Profile, opt *Options, in *ddcopy.Input, stdout *os.File, rep *progress.DD, usr1 <-chan os.Signal) error {
	ops := opt.Ops
	if ops.Seek != 0 || ops.Skip != 0 || ops.Count >= 0 || ops.Conv.Sparse || ops.OFlag.Append {
		return &usageError{"a framed stream places its own data: seek=, skip=, count=, conv=sparse and oflag=append do not apply (use --raw to copy the stream itself)"}
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
	base := &lazyReaderAt{ready: make(chan struct{})}
	defer base.set(nil, nil)
	defer base.close()
	ropts := []frame.ReaderOption{frame.WithVerify(!opt.NoVerify)}
	if !opt.NoVerify {
		ropts = append(ropts, frame.WithBase(base))
	}
	var fr *frame.Reader
	err := interruptible(ctx, func() (err error) {
		fr, err = frame.NewReader(src, ropts...)
		return err
	})
	if err == ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if errors.Is(err, frame.ErrVersion) {
		// The stream came from another build, typically over ssh from a
		// host upgraded before this one: say which tools to line up.
		return fmt.Errorf("%s: %w: blkcat on the sending side and this blkwrite are different blkpipe versions (see their --version); install the same version on both hosts", ddcopy.Quote(in.Name), err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ddcopy.Quote(in.Name), err)
	}
	defer fr.Close()
	h := fr.Header()
	full := !h.Delta() && h.StartOffset == 0
	if opt.AssumeZeroed && h.Delta() {
		// A delta's target holds the previous copy: a ZERO record there
		// replaces data, and skipping it would leave the old block while
		// the digest, which counts the record as zeros, still verifies.
		return &usageError{fmt.Sprintf("--assume-zeroed does not apply to a delta stream: its ZERO records replace blocks that hold data on %s; nothing was written", ddcopy.Quote(outputName(ops)))}
	}

	rs, err := newResumer(opt, h, rep)
	if err != nil {
		return err
	}
	t, err := openTarget(p, opt, h, full, stdout)
	if err != nil {
		return err
	}
	defer t.f.Close()
	if !t.seekable {
		rs = nil // of=/dev/null or a pipe: nothing to resume onto
	} else if h.Delta() {
		t.dropState = ops.Of
	}
	base.set(t.f, openSidecar(opt.Ops.Of, h))
	if err := checkDeltaTarget(t, h, full, rep); err != nil {
		return err
	}
	if err := rs.begin(t); err != nil {
		return err
	}
	t.resume = rs

	defer reportOnSignal(rep, usr1)()
	rep.Restart(time.Now())
	result := make(chan error, 1)
	var end frame.Record
	go func() { result <- t.apply(fr, rep, &end) }()
	select {
	case err = <-result:
	case <-ctx.Done():
		// apply may still be writing a record: say what is known to
		// have landed (the counter lags it by at most that record).
		if t.touched.Load() {
			rep.Diagnose(incomplete(rep.C.Bytes.Load(), t.name))
			if h.Delta() {
				rep.Diagnose(deltaAgain(t.name))
			}
		}
		rs.save(t)
		rep.Report(time.Now())
		return ErrInterrupted
	}
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
			rep.Diagnose(incomplete(t.written, t.name))
		}
		if digestErr {
			explainDigest(h, t.name, base.explain(t.name), rep)
			rs.done() // the target is not the source: nothing to resume
		} else {
			if h.Delta() && t.touched.Load() {
				rep.Diagnose(deltaAgain(t.name))
			}
			rs.announce()
		}
		rep.Report(time.Now())
		return &errReported{err}
	}
	rs.done()
	rep.Report(time.Now())
	digest := hex.EncodeToString(end.Digest[:])
	if end.Verified {
		rep.Diagnose("verified sha256 " + digest)
	} else {
		rep.Diagnose("sha256 " + digest + " NOT verified (--no-verify)")
	}
	return nil
}

// incomplete is the line blkwrite prints whenever a framed copy that
// changed the target did not finish.
func incomplete(landed int64, name string) string {
	return fmt.Sprintf("the copy is incomplete: %d bytes landed on %s; do not use the target", landed, ddcopy.Quote(name))
}

// deltaAgain is what blkwrite says after a delta that changed the target
// failed: a delta records no resume point, but running it again sends
// what is still missing.
func deltaAgain(name string) string {
	return fmt.Sprintf("a delta cannot be resumed: run it again, with new sums of %s, to finish the copy", ddcopy.Quote(name))
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
}

// set gives the target (nil: it will not be opened) and its sums sidecar
// (may be nil); only the first call counts.
func (l *lazyReaderAt) set(f *os.File, side *sidecarCheck) {
	l.once.Do(func() {
		l.f = f
		if f != nil {
			l.ahead = newReadAhead(f)
			l.ahead.side = side
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
			return l.ahead.side.explain(name)
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
	if l.f == nil {
		return 0, errors.New("target not open")
	}
	if l.ahead != nil {
		return l.ahead.ReadAt(p, off)
	}
	return l.f.ReadAt(p, off)
}

// target is where a framed stream lands.
type target struct {
	f        *os.File
	name     string
	seekable bool        // records are written at their offsets; else in order
	isBlock  bool        // a block device: ZERO runs are zeroed with BLKZEROOUT
	fresh    bool        // a file truncated for a full stream: ZERO runs can stay holes
	trunc    bool        // fresh, but the truncation waits for the first change
	touched  atomic.Bool // the target was changed (truncated or written); read on an interrupt while apply runs
	zeroed   bool        // --assume-zeroed
	direct   int         // O_DIRECT alignment, 0 when off
	buf      []byte
	written  int64 // source bytes applied
	pos      int64 // for unseekable targets: bytes written so far
	zeros    []byte
	resume   *resumer // records progress for resume; nil when off
	// dropState is the target whose resume state a delta stream drops
	// when it first changes it: the state vouches for bytes the delta
	// replaces, and a delta records none of its own.
	dropState string
}

// openTarget opens of= (or standard output) for a stream with header h,
// after checking that the target can hold the source.
func openTarget(p Profile, opt *Options, h frame.Header, full bool, stdout *os.File) (*target, error) {
	ops := opt.Ops
	t := &target{name: "standard output", zeroed: opt.AssumeZeroed}
	if ops.Of == "" {
		if !full {
			return nil, errors.New("a delta or resumed stream needs a target it can read back (of= a device or file)")
		}
		t.f = stdout
		if fi, err := stdout.Stat(); err == nil && fi.Mode().IsRegular() && !blockdev.IsAppend(stdout) {
			t.seekable = true
		}
		return t, nil
	}
	t.name = ops.Of
	isBlock := false
	if fi, err := os.Stat(ops.Of); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		isBlock = true
	}
	flag := os.O_RDWR | openFlags(ops.OFlag)
	var err error
	switch {
	case isBlock:
		t.f, err = blockdev.OpenExclusive(ops.Of, flag)
	default:
		if !ops.Conv.Nocreat && full {
			// A delta or resumed stream needs the target it continues.
			flag |= os.O_CREATE
			if err := refuseNewDevFile(ops.Of); err != nil {
				return nil, err
			}
		}
		if ops.Conv.Excl {
			flag |= os.O_EXCL
		}
		t.f, err = os.OpenFile(ops.Of, flag, 0o666)
	}
	if err != nil {
		if errors.Is(err, blockdev.ErrInUse) {
			return nil, err
		}
		return nil, &ddcopy.Error{Msg: "failed to open " + ddcopy.Quote(ops.Of), Err: err}
	}
	t.seekable, t.isBlock = true, isBlock
	if fi, err := t.f.Stat(); err == nil && !isBlock && !fi.Mode().IsRegular() {
		// A character device or FIFO (of=/dev/null to check a kept
		// stream): written in order like standard output, and never
		// truncated, as dd truncates only regular files.
		if !full {
			t.f.Close()
			return nil, errors.New("a delta or resumed stream needs a target it can read back (of= a device or file)")
		}
		t.seekable = false
		return t, nil
	}
	if isBlock {
		size, err := blockdev.Size(t.f)
		if err != nil {
			t.f.Close()
			return nil, err
		}
		if h.SourceSize >= 0 && size < h.SourceSize {
			t.f.Close()
			return nil, fmt.Errorf("target is smaller than the source: %s holds %d bytes, the stream's source is %d bytes; nothing was written", ddcopy.Quote(ops.Of), size, h.SourceSize)
		}
		t.setDirect(h)
		return t, nil
	}
	if err := lockTarget(t.f); err != nil {
		t.f.Close()
		return nil, err
	}
	if full && !ops.Conv.Notrunc {
		// As dd truncates of=, but only once the first record has passed
		// its checks: a stream that fails before leaves the file as it was.
		t.fresh, t.trunc = true, true
	}
	t.setDirect(h)
	return t, nil
}

// lockTarget takes an exclusive flock on a regular-file target for as long
// as f is open: two framed copies into one image file would each verify
// the stream it received and print "verified" while the file holds a mix
// of both (a block device is opened with O_EXCL instead).
func lockTarget(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil
	}
	if lerr == unix.EWOULDBLOCK {
		return fmt.Errorf("%s is being written by another blkwrite (flock); nothing was written", ddcopy.Quote(f.Name()))
	}
	// Any other error is a file system without flock (some network
	// ones): go on unlocked, as dd would.
	return nil
}

// touch is called before the first change to the target: it truncates a
// file that a full stream replaces, and notes that the target changed.
func (t *target) touch() error {
	if err := t.resume.dropStale(); err != nil {
		return err
	}
	if t.dropState != "" {
		if err := os.Remove(statePath(t.dropState)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale resume state: %w", err)
		}
		t.dropState = ""
	}
	if t.trunc {
		t.trunc = false
		if err := t.f.Truncate(0); err != nil {
			return &ddcopy.Error{Msg: "failed to truncate output file " + ddcopy.Quote(t.name), Err: err}
		}
	}
	t.touched.Store(true)
	return nil
}

// setDirect turns O_DIRECT on where the target supports it (not tmpfs),
// as raw blkwrite opens its output: aligned records bypass the page cache,
// which costs a copy and page allocation per byte and leaves the whole
// copy cached; writeAt falls back to the page cache for the others. A
// delta stream is written through the page cache: its records are small
// and scattered, and synchronous O_DIRECT writes of 4 KiB made a 1 GiB
// delta with 1 % changed a third slower; fdatasync makes them durable.
func (t *target) setDirect(h frame.Header) {
	if h.Delta() {
		return
	}
	if blockdev.SetDirect(t.f, true) == nil {
		t.direct = max(blockdev.DirectAlign(t.f), 512)
		t.buf = blockdev.AlignedBuffer(int(h.BlockSize), t.direct)
	}
}

// apply writes the stream's records to the target until END.
func (t *target) apply(fr *frame.Reader, rep *progress.DD, end *frame.Record) error {
	for {
		rec, err := fr.Next()
		if err != nil {
			return err
		}
		switch rec.Type {
		case frame.Data:
			if err := t.writeAt(rec.Data, rec.Offset); err != nil {
				return err
			}
		case frame.Zero:
			if err := t.zero(rec.Offset, rec.Length); err != nil {
				return err
			}
		case frame.End:
			*end = rec
			return nil
		}
		t.written += rec.Length
		if err := t.resume.advance(t, rec.Offset+rec.Length); err != nil {
			return err
		}
		rep.C.InFull.Add(1)
		rep.C.OutFull.Add(1)
		rep.C.Bytes.Store(t.written)
		rep.Tick(time.Now())
	}
}

func (t *target) writeErr(off int64, err error) error {
	if t.seekable && !t.isBlock && errors.Is(err, unix.ENOSPC) {
		// An image file grows: its file system is what ran out.
		return fmt.Errorf("error writing %s at offset %d: %s (the file system holding it is full)", ddcopy.Quote(t.name), off, ddcopy.Strerror(err))
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG) {
		return fmt.Errorf("error writing %s at offset %d: %s (target is smaller than the input)", ddcopy.Quote(t.name), off, ddcopy.Strerror(err))
	}
	return &ddcopy.Error{Msg: fmt.Sprintf("error writing %s at offset %d", ddcopy.Quote(t.name), off), Err: err}
}

// writeAt writes p at source offset off, through an aligned buffer with
// O_DIRECT when both are aligned, through the page cache otherwise.
func (t *target) writeAt(p []byte, off int64) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if !t.seekable {
		if off != t.pos {
			if err := t.zero(t.pos, off-t.pos); err != nil {
				return err
			}
		}
		_, err := t.f.Write(p)
		t.pos = off + int64(len(p))
		if err != nil {
			return t.writeErr(off, err)
		}
		return nil
	}
	if t.direct > 0 {
		if off%int64(t.direct) == 0 && len(p)%t.direct == 0 && len(p) <= len(t.buf) {
			// The Reader's buffers are usually aligned already (large
			// heap objects start on a page); copy only when not.
			if !blockdev.IsAligned(p, t.direct) {
				p = t.buf[:copy(t.buf, p)]
			}
			if _, err := t.f.WriteAt(p, off); err != nil {
				return t.writeErr(off, err)
			}
			return nil
		}
		blockdev.SetDirect(t.f, false)
		defer blockdev.SetDirect(t.f, true)
	}
	if _, err := t.f.WriteAt(p, off); err != nil {
		return t.writeErr(off, err)
	}
	return nil
}

// zero makes [off, off+n) read as zeros: nothing in a fresh file (a hole),
// nothing with --assume-zeroed, BLKZEROOUT or a punched hole otherwise.
func (t *target) zero(off, n int64) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if !t.seekable {
		if t.zeros == nil {
			t.zeros = make([]byte, 1<<20)
		}
		for n > 0 {
			k := min(n, int64(len(t.zeros)))
			if _, err := t.f.Write(t.zeros[:k]); err != nil {
				return t.writeErr(off, err)
			}
			off, n = off+k, n-k
			t.pos = off
		}
		return nil
	}
	if t.fresh || t.zeroed {
		return nil
	}
	if t.isBlock || t.direct > 0 {
		if err := blockdev.ZeroRange(t.f, off, n); err != nil {
			return t.writeErr(off, err)
		}
		return nil
	}
	// A file that held data: punch a hole, but never beyond its end (that
	// part reads as zeros once the size is set).
	if fi, err := t.f.Stat(); err == nil && off < fi.Size() {
		if err := blockdev.ZeroRange(t.f, off, min(n, fi.Size()-off)); err != nil {
			return t.writeErr(off, err)
		}
	}
	return nil
}

// finish sets a file's size to the source's, checks the digest verdict and
// makes the target durable.
func (t *target) finish(end frame.Record) error {
	if !t.touched.Load() {
		if err := t.touch(); err != nil {
			return err
		}
	}
	if t.seekable && !t.isBlock {
		if fi, err := t.f.Stat(); err == nil && fi.Mode().IsRegular() && (t.fresh && fi.Size() != end.Offset || fi.Size() < end.Offset) {
			if err := t.f.Truncate(end.Offset); err != nil {
				return &ddcopy.Error{Msg: "failed to set the size of " + ddcopy.Quote(t.name), Err: err}
			}
		}
	}
	if t.seekable {
		if err := blockdev.Fdatasync(t.f); err != nil && !errors.Is(err, unix.EINVAL) {
			return &ddcopy.Error{Msg: "fdatasync failed for " + ddcopy.Quote(t.name), Err: err}
		}
	}
	return nil
}
