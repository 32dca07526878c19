package ddtool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/sums"
	"golang.org/x/sys/unix"
)

// This file is blkcat's side of delta sync and resume:
//
//	blkcat --sums[=BS] SRC         per-block digests of SRC (internal/sums)
//	blkcat --against SUMS SRC      a delta stream: only blocks whose digest differs
//	blkcat --resume TOKEN SRC      a framed stream from where blkwrite stopped

// parseSumsBS parses --sums=BS; "" is the default block size.
func parseSumsBS(v string) (int, error) {
	if v == "" {
		return sums.DefaultBlockSize, nil
	}
	n, err := ddargs.ParseNumber(v)
	if err != nil || n < sums.MinBlockSize || n > sums.MaxBlockSize || n%512 != 0 {
		return 0, &usageError{fmt.Sprintf("invalid --sums block size '%s' (a multiple of 512 from 512 to 16M, e.g. 4K)", v)}
	}
	return int(n), nil
}

// checkDeltaOptions rejects combinations that make no sense, after ParseArgs.
func checkDeltaOptions(opt *Options) error {
	modes := 0
	for _, on := range []bool{opt.Sums > 0, opt.Against != "", opt.Resume != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return &usageError{"--sums, --against and --resume cannot be combined"}
	}
	if modes == 0 {
		return nil
	}
	if opt.Sums > 0 && opt.Frame {
		return &usageError{"--sums writes block digests, not a framed stream: --frame and -z do not apply"}
	}
	ops := opt.Ops
	if ops.Skip != 0 || ops.Count >= 0 || ops.Seek != 0 || ops.Conv.Sync {
		return &usageError{"--sums, --against and --resume read all of SRC: skip=, count=, seek= and conv=sync do not apply"}
	}
	if ops.Text.Active() {
		return &usageError{"--sums, --against and --resume read all of SRC as it is: the text conversions (conv=ucase, swab, block, ...) do not apply"}
	}
	if ops.If == "" {
		return &usageError{"--sums, --against and --resume need SRC to be a device or file (not standard input)"}
	}
	if opt.Against != "" || opt.Resume != "" {
		opt.Frame = true
	}
	return nil
}

// sender is what blkcat's copy feeds instead of its output: a frame.Writer
// or a sums.Writer.
type sender struct {
	sink io.Writer
	// finish closes the sink after the copy returned err and returns the
	// tool's error, worded.
	finish func(err error) error
}

// newSender sets up blkcat's framed, delta, resume or sums output, or
// returns nil for a plain copy.
// Reading the sums header and hashing a resume point's prefix happen
// here, before the copy: ctx's SIGINT or SIGTERM stops them (the hash of
// most of a large device takes minutes).
func newSender(ctx context.Context, opt *Options, c *ddcopy.Copier, stdin *os.File) (*sender, error) {
	switch {
	case opt.Sums > 0:
		return newSumsSender(opt, c)
	case opt.Against != "":
		return newDeltaSender(ctx, opt, c, stdin)
	case opt.Resume != "":
		return newResumeSender(ctx, opt, c)
	case opt.Frame:
		fw, err := newFrameWriter(opt, c)
		if err != nil {
			return nil, err
		}
		return &sender{sink: fw, finish: closeFrame(fw, c)}, nil
	}
	return nil, nil
}

// closeFrame returns the sender's finish for a frame writer: END only when
// the copy succeeded, never after a failed read.
func closeFrame(fw *frame.Writer, c *ddcopy.Copier) func(error) error {
	return func(err error) error {
		if err != nil {
			fw.Abort(err)
			return err
		}
		if cerr := fw.Close(); errors.Is(cerr, frame.ErrSourceSize) {
			// The stream was cut without END; the fault is SRC's, which
			// grew or shrank while it was read (an image being replaced).
			err = fmt.Errorf("%s changed size while it was read: %w", ddcopy.Quote(c.In.Name), cerr)
		} else if cerr != nil {
			err = &ddcopy.Error{Msg: "error writing " + ddcopy.Quote(c.Out.Name), Err: cerr}
		}
		return err
	}
}

// knownSize returns the size of SRC, which delta and resume need.
func knownSize(c *ddcopy.Copier, what string) (int64, error) {
	size := streamSize(c)
	if size < 0 {
		return 0, &usageError{fmt.Sprintf("%s needs SRC to be a device or file of known size; %s is not", what, ddcopy.Quote(c.In.Name))}
	}
	return size, nil
}

func newSumsSender(opt *Options, c *ddcopy.Copier) (*sender, error) {
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
	side := newSidecarWriter(c.Out.F, c.In.Name)
	sw, err := sums.NewWriter(side, opt.Sums, size)
	if err != nil {
		side.finish(false)
		return nil, &usageError{err.Error()}
	}
	return &sender{sink: sw, finish: func(err error) error {
		if cerr := sw.Close(); err == nil && errors.Is(cerr, sums.ErrSize) {
			// No trailer was written; the fault is SRC's.
			err = fmt.Errorf("%s changed size while it was read: %w", ddcopy.Quote(c.In.Name), cerr)
		} else if err == nil && cerr != nil {
			err = &ddcopy.Error{Msg: "error writing block sums to " + ddcopy.Quote(c.Out.Name), Err: cerr}
		}
		side.finish(err == nil)
		return err
	}}, nil
}

// newDeltaSender reads the sums header (refusing another block size or a
// target smaller than SRC before anything is sent) and returns a frame
// writer that sends only the blocks whose digest differs.
func newDeltaSender(ctx context.Context, opt *Options, c *ddcopy.Copier, stdin *os.File) (*sender, error) {
	size, err := knownSize(c, "--against")
	if err != nil {
		return nil, err
	}
	name := opt.Against
	var f *os.File
	if name == "-" {
		name, f = "standard input", stdin
	} else if f, err = os.Open(name); err != nil {
		return nil, &ddcopy.Error{Msg: "failed to open block sums " + ddcopy.Quote(name), Err: err}
	}
	var sr *sums.Reader
	in := &readSeen{r: f}
	err = interruptible(ctx, func() (err error) {
		sr, err = sums.NewReader(in) // from a stalled ssh, perhaps
		return err
	})
	if err == ErrInterrupted {
		return nil, err
	}
	if errors.Is(err, sums.ErrBadMagic) && !in.seen {
		// `ssh backup blkcat --sums DEV | blkcat --against -` whose
		// remote side failed (its reason is on stderr above): the sums
		// are missing, not of another kind.
		return nil, fmt.Errorf("block sums %s are empty (did blkcat --sums on the other side fail?); nothing was sent", ddcopy.Quote(name))
	}
	if errors.Is(err, sums.ErrVersion) {
		// `ssh backup blkcat --sums DEV | blkcat --against -`: the
		// backup host runs another build.
		return nil, fmt.Errorf("block sums %s: %w: the blkcat --sums that wrote them and this blkcat are different blkpipe versions (see their --version); install the same version on both hosts", ddcopy.Quote(name), err)
	}
	if err != nil {
		return nil, fmt.Errorf("block sums %s: %w", ddcopy.Quote(name), err)
	}
	h := sr.Header()
	if h.Size < size {
		return nil, fmt.Errorf("source is larger than the target: %s is %d bytes, the block sums %s are of a %d-byte target; nothing was sent", ddcopy.Quote(c.In.Name), size, ddcopy.Quote(name), h.Size)
	}
	if h.Size > size {
		c.R.Note(fmt.Sprintf("the target is %d bytes, larger than %s (%d bytes); its last %d bytes are left as they are", h.Size, ddcopy.Quote(c.In.Name), size, h.Size-size))
	}
	d := &deltaFilter{name: name, size: size, batches: make(chan []uint64, 4), out: &failWriter{w: c.Out.F}}
	go d.prefetch(sr)
	if size == 0 {
		d.drain()
		if d.err != nil {
			return nil, d.err
		}
	}
	fw, err := frame.NewWriter(d.out, frame.WithCodec(opt.Codec, opt.Level), frame.WithSourceSize(size),
		frame.WithBlockSize(h.BlockSize), frame.WithFilter(d.keep))
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	closeFw := closeFrame(fw, c)
	return &sender{sink: fw, finish: func(err error) error {
		err = closeFw(err)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.err != nil {
			return d.err // the reason the stream was cut short
		}
		return err
	}}, nil
}

// deltaFilter is the frame writer's filter for blkcat --against: it pairs
// each block with the next digest of the sums stream, read ahead on its own
// goroutine so the network never waits for the disk or the other way round.
// The read-ahead is bounded (batches of 4096 digests, 4 queued: 80 MiB of
// target at 4 KiB blocks) because it is also how far the --sums pass runs
// ahead of blkwrite, which finds those blocks in the page cache and drops
// them: a short lead keeps that window small, and the pages it frees are
// reused at once. (With 2 GiB of lead, on a VM that hands freed memory
// back to its host, the --sums pass cost 2 s of system time per GiB.)
type deltaFilter struct {
	name    string
	size    int64
	batches chan []uint64
	final   error // the reader's last error (io.EOF when the trailer checked out)
	cur     []uint64
	out     *failWriter

	mu  sync.Mutex
	err error
}

func (d *deltaFilter) prefetch(sr *sums.Reader) {
	defer close(d.batches)
	for {
		batch := make([]uint64, 0, 4096)
		for len(batch) < cap(batch) {
			v, err := sr.Next()
			if err != nil {
				d.final = err // published by close(d.batches)
				d.batches <- batch
				return
			}
			batch = append(batch, v)
		}
		d.batches <- batch
	}
}

// next returns the next digest.
func (d *deltaFilter) next() (uint64, error) {
	for len(d.cur) == 0 {
		b, ok := <-d.batches
		if !ok {
			if d.final == io.EOF {
				return 0, fmt.Errorf("block sums %s: %w: fewer digests than the source has blocks", ddcopy.Quote(d.name), sums.ErrTruncated)
			}
			return 0, fmt.Errorf("block sums %s: %w", ddcopy.Quote(d.name), d.final)
		}
		d.cur = b
	}
	v := d.cur[0]
	d.cur = d.cur[1:]
	return v, nil
}

// drain reads the digests past the source's end (a larger target) and the
// trailer, which proves the digests used were the target's, in order.
func (d *deltaFilter) drain() {
	d.cur = nil
	for range d.batches {
	}
	if d.final != io.EOF {
		d.fail(fmt.Errorf("block sums %s: %w", ddcopy.Quote(d.name), d.final))
	}
}

// fail records err and cuts the output, so the stream never gets its END
// and blkwrite cannot take it for complete.
func (d *deltaFilter) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.out.fail(err)
}

// keep is the frame.WithFilter callback: send the block unless its digest
// equals the target's.
func (d *deltaFilter) keep(off int64, block []byte) bool {
	v, err := d.next()
	if err != nil {
		d.fail(err)
		return true
	}
	last := off+int64(len(block)) == d.size
	if last {
		d.drain()
	}
	return sums.Sum(block) != v
}

// failWriter passes writes through until fail is called.
type failWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (f *failWriter) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *failWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

// newResumeSender starts a framed stream at the offset in blkwrite's
// resume token, with the interrupted stream's id, after hashing SRC's
// prefix so END still carries the whole source's SHA-256.
func newResumeSender(ctx context.Context, opt *Options, c *ddcopy.Copier) (*sender, error) {
	tok, err := ParseToken(opt.Resume)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("invalid --resume token '%s': %v", opt.Resume, err)}
	}
	size, err := knownSize(c, "--resume")
	if err != nil {
		return nil, err
	}
	if size != tok.Size {
		return nil, fmt.Errorf("resume point is for a %d-byte source, %s is %d bytes: it belongs to another copy; nothing was sent", tok.Size, ddcopy.Quote(c.In.Name), size)
	}
	if tok.HasSample {
		got, err := prefixSample(c.In.F, tok.Offset)
		if err != nil {
			return nil, &ddcopy.Error{Msg: "error reading " + ddcopy.Quote(c.In.Name), Err: err}
		}
		if got != tok.Sample {
			return nil, fmt.Errorf("resume point does not match %s: the target's first %d bytes are not this source's (sampled blocks differ; another source, or it changed since the interrupted copy): make a full copy; nothing was sent",
				ddcopy.Quote(c.In.Name), tok.Offset)
		}
	}
	fw, err := frame.NewWriter(c.Out.F, frame.WithCodec(opt.Codec, opt.Level), frame.WithSourceSize(size),
		frame.WithStartOffset(tok.Offset), frame.WithStreamID(tok.ID))
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if err := hashPrefix(ctx, fw, c.In.F, tok.Offset); err != nil {
		fw.Close()
		if err == ErrInterrupted {
			return nil, err
		}
		return nil, &ddcopy.Error{Msg: "error reading " + ddcopy.Quote(c.In.Name), Err: err}
	}
	c.P.Skip, c.P.SkipTail = tok.Offset/int64(c.P.IBS), tok.Offset%int64(c.P.IBS)
	c.R.Diagnose(fmt.Sprintf("resuming at byte %d of %d (%d bytes to send)", tok.Offset, size, size-tok.Offset))
	return &sender{sink: fw, finish: closeFrame(fw, c)}, nil
}

// hashPrefix feeds f's first n bytes to fw.HashOnly, reading aligned
// chunks so O_DIRECT works, until done or ctx is cancelled
// (ErrInterrupted).
func hashPrefix(ctx context.Context, fw *frame.Writer, f *os.File, n int64) error {
	buf := blockdev.AlignedBuffer(8<<20, 4096)
	for off := int64(0); off < n; {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		want := min(int64(len(buf)), (n-off+4095)&^4095)
		k, err := f.ReadAt(buf[:want], off)
		k = int(min(int64(k), n-off))
		if k > 0 {
			if _, herr := fw.HashOnly(buf[:k]); herr != nil {
				return herr
			}
			off += int64(k)
		}
		if err != nil && off < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("hash the first %d bytes at offset %d: %w", n, off, err)
		}
	}
	return nil
}

// Token is a resume point: which stream, how far it durably got, the
// source size, and a sample of the bytes the target holds before Offset
// (see prefixSample), as blkwrite --resume-point prints it and blkcat
// --resume takes it.
type Token struct {
	ID        [16]byte
	Offset    int64
	Size      int64
	Sample    uint64
	HasSample bool // tokens from before the sample have none
}

// String formats the token as STREAMID:OFFSET:SIZE:SAMPLE (hex id, decimal
// numbers, 16 hex digits), or STREAMID:OFFSET:SIZE without a sample.
func (t Token) String() string {
	if t.HasSample {
		return fmt.Sprintf("%x:%d:%d:%016x", t.ID, t.Offset, t.Size, t.Sample)
	}
	return fmt.Sprintf("%x:%d:%d", t.ID, t.Offset, t.Size)
}

// ParseToken parses what Token.String prints.
func ParseToken(s string) (Token, error) {
	var t Token
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 || len(parts[0]) != 32 {
		return t, errors.New("want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point")
	}
	if len(parts) == 4 {
		v, err := strconv.ParseUint(parts[3], 16, 64)
		if err != nil || len(parts[3]) != 16 {
			return t, errors.New("sample is not 16 hex digits")
		}
		t.Sample, t.HasSample = v, true
	}
	if _, err := hex.Decode(t.ID[:], []byte(parts[0])); err != nil {
		return t, errors.New("stream id is not 32 hex digits")
	}
	var err error
	if t.Offset, err = strconv.ParseInt(parts[1], 10, 64); err != nil || t.Offset < 0 {
		return t, errors.New("bad offset")
	}
	if t.Size, err = strconv.ParseInt(parts[2], 10, 64); err != nil || t.Size < t.Offset {
		return t, errors.New("bad size")
	}
	return t, nil
}

// readAhead serves the frame Reader's reads of the target's gaps (the
// blocks a delta or resume stream leaves out), which come in increasing
// offsets, from a second descriptor through the page cache, with the
// kernel asked to read the next readAheadWindow bytes ahead (so the reads
// overlap the hashing) and the pages behind dropped again (so a nightly
// verify leaves the cache as it was). The descriptor blkwrite writes with
// may have O_DIRECT, which needs aligned buffers; this one does not.
type readAhead struct {
	f       *os.File
	fadvise bool
	next    int64 // WILLNEED was given up to here
	dropped int64 // pages before this were dropped
	side    *sidecarCheck
}

const readAheadWindow = 32 << 20

// newReadAhead opens target's file again for reading; if it cannot, reads
// go to target itself.
func newReadAhead(target *os.File) *readAhead {
	f, err := os.Open(target.Name())
	if err != nil {
		return &readAhead{f: target}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().IsDir() {
		f.Close()
		return &readAhead{f: target}
	}
	return &readAhead{f: f, fadvise: true}
}

// ReadAt reads p at off, keeping the kernel's read-ahead in front of it.
func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	if r.fadvise {
		end := off + int64(len(p))
		if end+readAheadWindow/2 > r.next {
			from := max(r.next, end)
			unix.Fadvise(int(r.f.Fd()), from, end+readAheadWindow-from, unix.FADV_WILLNEED)
			r.next = end + readAheadWindow
		}
		if off-r.dropped > 2*readAheadWindow {
			blockdev.DropCache(r.f, r.dropped, off-readAheadWindow-r.dropped)
			r.dropped = off - readAheadWindow
		}
	}
	n, err := r.f.ReadAt(p, off)
	r.side.check(p[:n], off)
	return n, err
}

func (r *readAhead) close() {
	if r == nil {
		return
	}
	r.side.close()
	if r.fadvise {
		r.f.Close()
	}
}

// readSeen is r, remembering whether a read ever returned a byte.
type readSeen struct {
	r    io.Reader
	seen bool
}

func (s *readSeen) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.seen = true
	}
	return n, err
}
