// Package ddcopy is blkpipe's one copy engine: it moves bytes from an input
// to an output with GNU dd's semantics (records in and out, partial reads,
// conv=sync, conv=sparse, skip, seek, count) while doing its own I/O in large
// aligned chunks, reading ahead on several goroutines and overlapping reads
// with writes.
//
// Internal I/O may be larger than ibs or obs whenever that cannot change the
// result: a read of k*ibs bytes that returns n is accounted as the n/ibs full
// records and one partial record that dd's reads of ibs would have returned
// from the same data, and output is written in whole chunks whose bytes are
// exactly the ones dd's obs-sized writes would have produced.
package ddcopy

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/target"
	"golang.org/x/sys/unix"
)

// Params are dd's transfer parameters, resolved from its operands.
type Params struct {
	IBS, OBS  int         // input and output block sizes (ibs=, obs=, bs=)
	Reblock   bool        // true unless bs= was given; false writes each read as it came
	Count     int64       // records to copy, -1 for all (count=)
	CountTail int64       // bytes to copy after Count records (iflag=count_bytes)
	Skip      int64       // input records to skip (skip=)
	SkipTail  int64       // and bytes after them (iflag=skip_bytes)
	Seek      int64       // output records to seek over (seek=)
	SeekTail  int64       // and bytes after them (oflag=seek_bytes)
	Sync      bool        // conv=sync: pad partial input records with zeros
	Noerror   bool        // conv=noerror: carry on after read errors
	Sparse    bool        // conv=sparse: seek over all-zero output blocks
	Fullblock bool        // iflag=fullblock: accumulate full input records
	Fsync     bool        // conv=fsync
	Fdatasync bool        // conv=fdatasync
	Direct    bool        // iflag=direct or oflag=direct was given (for dd's warning rule)
	Text      ddargs.Text // text conversions (conv=ucase,swab,block,...), see conv.go
}

// Input is the source. The caller opens it; Copy does not close it.
type Input struct {
	F          *os.File
	R          io.Reader // if set, stream reads come from R (F still names the file)
	Name       string    // as dd names it: the path, or "standard input"
	Seekable   bool      // a regular file or block device: reads are full until EOF
	Size       int64     // size when Seekable, else -1
	Direct     bool      // O_DIRECT is on
	UserDirect bool      // iflag=direct was asked for (else O_DIRECT is the tool's own choice)
	Align      int       // O_DIRECT alignment of F
	Nocache    bool      // iflag=nocache: drop the pages read from the page cache
}

// Output is the destination, a write target opened by target.Open (or
// target.Stdout). The caller opens it; Copy does not close it.
type Output = target.Target

// Copier copies with dd semantics. Set the fields, then call Run once.
type Copier struct {
	P   Params
	In  Input
	Out Output
	R   *progress.DD // counters and reports; required

	// ChunkSize is the internal I/O size; it is rounded to a multiple of the
	// block sizes and alignments. Default 4 MiB.
	ChunkSize int
	// Buffers is the number of chunks in flight. Default 6 (24 MiB).
	Buffers int
	// Readers is the number of concurrent reads on a seekable input, so a
	// device sees several requests at once. Default 4.
	Readers int
	// PieceSize caps one read(2) of a parallel read. Default 1 MiB.
	PieceSize int
	// NoAIO reads with a goroutine per pread instead of Linux native AIO.
	NoAIO bool

	// Sink, if set, receives the output instead of Out.F (blkcat --frame
	// feeds a frame.Writer); seek=, conv=sparse and O_DIRECT do not apply.
	// A Sink that is also an OwningSink is lent the read buffers instead.
	Sink io.Writer

	// OnWriteError, if set, may replace the error returned when a write
	// fails after written bytes of output landed (blkwrite explains a
	// target that is too small).
	OnWriteError func(err error, written int64) error

	lent       sync.WaitGroup // buffers lent to an OwningSink
	ibs, obs   int
	chunk      int  // bytes of input a chunk holds
	bufSize    int  // bytes of a buffer: chunk, and a record's room for conv=sync padding
	align      int  // buffer alignment
	streamUnit int  // readStream passes on whole multiples of this when it reblocks for conv=sparse or O_DIRECT
	stream     bool // read sequentially even a seekable input (sparse obs blocks would straddle parallel chunks)
	warn       bool // dd's warn_partial_read: bs= given, no fullblock, and skip, count or direct
	warned     bool // the partial-read warning was given (dd gives it once)
	prevShort  int  // length of the last read when it was short of a record
	lastShort  bool // readOnce's last read(2) returned less than it asked for
	outOff     int64
	appendMode bool // the output has O_APPEND: writes land at its end, wherever the offset is
	sparseSeek bool // the last output operation was a sparse seek
}

// run is a run of records of one size that start at stream offset off.
type run struct {
	off     int64 // stream offset (after conv=sync padding) of the first record
	size    int   // bytes each record occupies in the stream
	count   int64
	partial bool // short input records (r_partial)
}

// chunk is a buffer of stream bytes handed from the reader to the writer.
type chunk struct {
	buf  []byte // stream bytes in buf[:n]
	n    int
	off  int64 // stream offset of buf[0]
	recs []run // input records whose first byte is in this chunk
	err  error // input ended with this error after these bytes
	eof  bool
	done chan struct{} // closed when the chunk is filled (parallel reads)
	// notes are read errors conv=noerror went on after; the writer
	// reports each with the statistics as they stood before it.
	notes []note
}

// note is a read error at buf[pos] of a chunk that the copy went on after.
type note struct {
	pos int
	err error
}

// OwningSink is a Sink that takes over the buffers it is given instead of
// copying them: it keeps p until it calls release, exactly once, from any
// goroutine, also after an error. Run returns only after every release.
type OwningSink interface {
	io.Writer
	WriteOwned(p []byte, release func()) (int, error)
}

// Run copies until the input ends, count is reached, or an error. It
// returns a *Error for I/O failures, worded as dd words them; the counters
// in c.R hold what was copied either way. ctx cancels the copy between
// chunks.
func (c *Copier) Run(ctx context.Context) error {
	if c.P.Text.Active() {
		return c.runText(ctx) // conv.go: dd's record loop, for conv=ascii,swab,...
	}
	c.layout()
	c.warn = !c.P.Reblock && !c.P.Fullblock && (c.P.Skip != 0 || c.P.Count > 0 || c.P.Direct)
	start, err := c.skipSeek()
	if err != nil {
		return err
	}
	if c.Out.Direct && c.outOff%int64(max(c.Out.Align, 1)) != 0 {
		c.Out.DirectOff()
	}
	if c.P.Count == 0 && c.P.CountTail == 0 {
		// count=0: dd returns before it allocates its buffers.
		return c.discardAtEOF(c.finish())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bufs, release, err := mapBuffers(c.Buffers, c.bufSize, c.align)
	if err != nil {
		return memoryError("input", c.ibs)
	}
	defer release()
	c.Buffers = len(bufs)
	// Buffers lent to an OwningSink come back before they are unmapped.
	defer c.lent.Wait()
	free := make(chan []byte, c.Buffers)
	for _, b := range bufs {
		free <- b
	}
	queue := make(chan *chunk, c.Buffers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		if c.In.Seekable && c.In.Size >= 0 && c.In.R == nil && !c.stream {
			c.readParallel(ctx, start, free, queue)
		} else {
			c.readStream(ctx, free, queue)
		}
	}()
	err = c.writeAll(ctx, queue, free)
	cancel()
	// Drain so the reader can finish and return its buffers.
	for ch := range queue {
		<-ch.done
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return c.finish()
}

// bigUnit is the size above which a copy's chunks are sized to spare
// memory rather than for speed: one or two records a chunk, two buffers.
const bigUnit = 64 << 20

// layout sizes the chunks and buffers. A chunk holds whole input records
// (and, reblocking with conv=sparse, whole output blocks, which dd tests
// for zeros one by one), aligned for O_DIRECT and page-mapped memory when
// that costs no more than bigUnit; awkward block sizes (ibs=999999
// obs=1000000, whose multiples are terabytes) give up the alignment, and
// sparse reblocking then reads sequentially, holding back the partial
// output block of each chunk.
func (c *Copier) layout() {
	c.ibs, c.obs = c.P.IBS, c.P.obsInUse()
	if c.ChunkSize <= 0 {
		c.ChunkSize = 4 << 20
	}
	if c.Buffers <= 0 {
		c.Buffers = 6
	}
	if c.Readers <= 0 {
		c.Readers = 4
	}
	if c.PieceSize <= 0 {
		c.PieceSize = 1 << 20
	}
	c.align = max(c.In.Align, c.Out.Align, 4096) // page-aligned buffers map to whole pages for O_DIRECT
	limit := max(bigUnit, c.ibs, c.obs)
	unit := c.ibs
	if l, ok := lcmFit(unit, c.obs, limit); ok {
		unit = l
	} else if c.P.Reblock && c.P.Sparse {
		c.stream = true
	}
	if l, ok := lcmFit(unit, c.align, limit); ok {
		unit = l
	}
	k := c.ChunkSize / unit
	if unit <= bigUnit {
		k = max(k, 2)
	}
	c.chunk = max(k, 1) * unit

	// readStream, reblocking for conv=sparse or O_DIRECT output, passes on
	// whole units and carries the rest over: a chunk must hold a unit
	// and a record after the carry.
	c.streamUnit = 1
	if c.P.Reblock && (c.P.Sparse || c.Out.Direct) {
		d := 1
		if c.Out.Direct {
			d = max(c.Out.Align, 512)
		}
		if l, ok := lcmFit(c.obs, d, limit); ok {
			c.streamUnit = l
		} else if c.P.Sparse {
			c.streamUnit = c.obs
		}
	}
	if c.streamUnit > 1 && c.chunk < addSat(c.streamUnit, c.ibs) {
		need := addSat(c.streamUnit, c.ibs)
		if n := need/unit + 1; n <= math.MaxInt/unit {
			c.chunk = n * unit
		} else {
			c.chunk = math.MaxInt
		}
	}
	if c.chunk >= 16<<20 {
		c.Buffers = min(c.Buffers, 3)
	}
	if c.chunk > bigUnit {
		c.Buffers = min(c.Buffers, 2)
	}
	c.bufSize = c.chunk
	if c.P.Sync {
		c.bufSize = addSat(c.chunk, c.ibs) // a short record padded at the end of a chunk
	}
}

// CheckMemory finds out, without touching anything, whether a copy with p
// between in and out can have its buffers: dd allocates an input buffer of
// ibs bytes, and one of obs bytes when it reblocks, and dies with "memory
// exhausted by input buffer of size 1099511627776 bytes (1.0 TiB)" when it
// cannot. It returns that error, worded as dd's, for what dd could not
// allocate, or for the buffers Run would map. Tools call it before they
// open the output, so a copy that cannot run leaves its target as it was;
// out may be the zero Output then.
func CheckMemory(p Params, in Input, out Output) error {
	return (&Copier{P: p, In: in, Out: out}).CheckMemory()
}

// CheckMemory is CheckMemory(c.P, c.In, c.Out) for a copy tuned as c is
// (ChunkSize, Buffers); c itself is not changed.
func (c *Copier) CheckMemory() error {
	c = &Copier{P: c.P, In: c.In, Out: c.Out, ChunkSize: c.ChunkSize, Buffers: c.Buffers, Readers: c.Readers, PieceSize: c.PieceSize}
	c.layout()
	if !canMap(c.ibs) {
		return memoryError("input", c.ibs)
	}
	if c.P.Reblock && !canMap(c.obs) {
		return memoryError("output", c.obs)
	}
	_, release, err := mapBuffers(c.Buffers, c.bufSize, c.align)
	if err != nil {
		return memoryError("input", c.ibs)
	}
	release()
	return nil
}

// canMap reports whether size bytes of memory can be mapped, as dd's
// malloc of them would succeed; nothing is touched.
func canMap(size int) bool {
	_, release, err := mapBuffers(1, size, 1)
	if err != nil {
		return false
	}
	release()
	return true
}

// memoryError is dd's message for a buffer it could not allocate.
func memoryError(which string, size int) error {
	return &ddmsg.Error{Msg: "memory exhausted by " + which + " buffer of size " + itoa(size) +
		" bytes (" + progress.HumanBytes(uint64(size), true) + ")"}
}

// skipInput positions the input after skip= records and bytes, as dd's
// skip() does: lseek by the offset from where the input is, unless the
// offset does not fit an off_t; when that fails on an input that can seek
// to its end (a block device past its end, a file past the filesystem's
// largest offset, any offset beyond an off_t), fail "cannot skip"; else
// (pipes) read and discard. It returns the offset reached on a seekable
// input.
func (c *Copier) skipInput() (int64, error) {
	if c.P.Skip == 0 && c.P.SkipTail == 0 {
		if !c.In.Seekable || c.In.Size < 0 {
			return 0, nil
		}
		cur, err := c.In.F.Seek(0, io.SeekCurrent)
		if err != nil {
			cur = 0
		}
		return cur, nil
	}
	want, fits := c.P.SkipOffset()
	lseekErr := error(unix.EOVERFLOW) // dd's errno when it did not even try
	// With bytes already read ahead (c.In.R), only reading skips the
	// right ones; an offset beyond an off_t still fails where dd's would.
	if fits && c.In.R == nil {
		cur, cerr := c.In.F.Seek(0, io.SeekCurrent)
		pos, err := c.In.F.Seek(want, io.SeekCurrent)
		if err == nil {
			// A file skipped past its end: dd says so, and copies
			// nothing.
			if cerr == nil && c.In.Seekable && c.In.Size > 0 && c.In.Size-cur < want {
				c.skipWarning()
			}
			return pos, nil
		}
		lseekErr = err
	}
	if !fits || c.In.R == nil {
		if _, err := c.In.F.Seek(0, io.SeekEnd); err == nil {
			return 0, &ddmsg.Error{Msg: ddmsg.QuoteF(c.In.Name) + ": cannot skip", Err: lseekErr}
		}
	}
	// Not seekable: read and discard. Every read counts as one skipped
	// record, whatever its length, as in dd.
	bufs, release, err := mapBuffers(1, c.ibs, 1)
	if err != nil {
		return 0, memoryError("input", c.ibs)
	}
	defer release()
	buf := bufs[0]
	records, tail := c.P.Skip, c.P.SkipTail
	var skipped int64
	for records > 0 || tail > 0 {
		size := c.ibs
		if records == 0 {
			size = int(tail)
		}
		n, err := c.readOnce(buf[:size], 0)
		if err != nil && err != io.EOF {
			return 0, &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}
		}
		if n == 0 {
			break
		}
		c.noteRead(n, size)
		skipped += int64(n)
		if records > 0 {
			records--
		} else {
			tail = 0
		}
	}
	// Short reads skip less than asked, and dd says so.
	if records > 0 || !fits || skipped != want {
		c.skipWarning()
	}
	return 0, nil
}

// skipWarning is dd's note that the input ended before the skip did.
func (c *Copier) skipWarning() {
	if c.R.Level != progress.LevelNone {
		c.R.Diagnose(ddmsg.QuoteF(c.In.Name) + ": cannot skip to specified offset")
	}
}

// seekOutput moves the output past seek= records and bytes, as dd's skip()
// does for the output: an lseek from where the output is, and "cannot
// seek" when that fails or the offset does not fit an off_t.
func (c *Copier) seekOutput() error {
	c.appendMode = blockdev.IsAppend(c.Out.F)
	if c.P.Seek == 0 && c.P.SeekTail == 0 {
		cur, err := c.Out.F.Seek(0, io.SeekCurrent)
		if err != nil {
			cur = 0
		}
		c.outOff = cur
		return nil
	}
	want, fits := c.P.SeekOffset()
	var lseekErr error
	if fits {
		pos, err := c.Out.F.Seek(want, io.SeekCurrent)
		if err == nil {
			c.outOff = pos
			return nil
		}
		lseekErr = err
	}
	if _, err := c.Out.F.Seek(0, io.SeekEnd); err == nil && lseekErr == nil {
		// Seekable, and the offset is beyond an off_t.
		lseekErr = unix.EOVERFLOW
	}
	// dd would then read the output to advance it, which fails on a pipe:
	// it reports the lseek's error, or none when it made no lseek.
	return &ddmsg.Error{Msg: ddmsg.QuoteF(c.Out.Name) + ": cannot seek", Err: lseekErr}
}

// readOnce reads once (or, with iflag=fullblock, until p is full, the
// input ends, or a short read completes a record: have bytes of the
// current record came before p), treating the EINVAL that O_DIRECT gives at an unaligned end
// of file as the end of input, as dd does: only after a short read. Any
// other EINVAL (an unaligned size) is an error, as in dd; taking it for
// the end copied nothing and exited 0.
func (c *Copier) readOnce(p []byte, have int) (int, error) {
	total := 0
	read := func(p []byte) (int, error) { return readFile(c.In.F, p) }
	if c.In.R != nil {
		read = c.In.R.Read
	}
	for total < len(p) {
		n, err := read(p[total:])
		total += n
		if err != nil {
			if errors.Is(err, unix.EINVAL) && c.In.Direct && c.lastShort {
				err = io.EOF
			}
			return total, err
		}
		c.lastShort = n < len(p)-(total-n)
		if n == 0 || !c.P.Fullblock {
			break
		}
		if c.lastShort && have+total >= c.ibs {
			// The input has no more for now and a record is whole:
			// pass it on, as dd writes each record once it is read.
			break
		}
	}
	return total, nil
}

// readFile reads from f once, as read(2) does. os.File.Read caps a read
// at 1 GiB; dd's read of a larger ibs gets what the kernel gives (up to
// 2 GiB - 4 KiB), and that one read is the record it counts.
func readFile(f *os.File, p []byte) (int, error) {
	if len(p) <= 1<<30 {
		return f.Read(p)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Read(p)
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// noteRead gives dd's one warning about a short read followed by another
// read, when bs= is used with count=, skip= or direct I/O. n is what a read
// of size bytes returned.
func (c *Copier) noteRead(n, size int) {
	if n <= 0 {
		return
	}
	if c.warn && !c.warned && c.prevShort > 0 && c.prevShort < size {
		c.warned = true
		if c.R.Level != progress.LevelNone { // dd's status=none silences it
			c.R.Diagnose(partialReadWarning(c.prevShort))
		}
	}
	c.prevShort = 0
	if r := n % c.ibs; r != 0 || n < size {
		c.prevShort = r
	}
}

// remaining returns how many records and tail bytes may still be read after
// records full or partial records, or (-1, 0) when there is no count.
func (c *Copier) remaining(records int64) (int64, int64) {
	if c.P.Count < 0 {
		return -1, 0
	}
	return max(c.P.Count-records, 0), c.P.CountTail
}

// readStream reads a pipe, terminal or other unseekable input sequentially,
// each read asking for a whole number of input records so its result can be
// accounted as dd's reads of ibs would have been.
func (c *Copier) readStream(ctx context.Context, free chan []byte, queue chan<- *chunk) {
	var (
		records    int64 // input records read so far (full and partial)
		tailDone   bool  // the count_bytes tail was read
		off        int64 // stream offset
		carry      []byte
		carryRecs  []run
		carryNotes []note
		// held is a buffer read on into at the next round, whose first
		// bytes are carry (no copy); spare is a carry's old array, to
		// take the next carry without allocating.
		held, spare []byte
		// pend bytes at the end of carry begin a record that
		// iflag=fullblock has not completed yet: not counted, not sent.
		pend int
	)
	unit := 1
	if c.P.Reblock && (c.Out.Direct || c.P.Sparse) {
		unit = c.streamUnit
	}
	if c.In.Direct && !c.In.UserDirect && blockdev.SetDirect(c.In.F, false) == nil {
		// A seekable input read in sequence (conv=sparse with block
		// sizes whose multiples are too large to chunk) gets reads of
		// dd's sizes, which O_DIRECT refuses unless they are aligned:
		// the tool's own O_DIRECT goes, as dd reads without it.
		c.In.Direct = false
	}
	for {
		var buf []byte
		if held != nil {
			if ctx.Err() != nil {
				return
			}
			buf, held = held, nil
		} else {
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			copy(buf, carry)
			if carry != nil {
				spare = carry[:0]
			}
		}
		ch := &chunk{buf: buf, off: off - int64(len(carry)-pend), done: make(chan struct{})}
		pos := len(carry) - pend
		ch.recs = append(ch.recs, carryRecs...)
		ch.notes = append(ch.notes, carryNotes...)
		carry, carryRecs, carryNotes = nil, nil, nil
		end := false
		for !end {
			recs, tail := c.remaining(records)
			req := (c.chunk - pos) / c.ibs * c.ibs
			if recs == 0 {
				if tailDone || tail == 0 || req == 0 {
					if tailDone || tail == 0 {
						ch.eof = true
						end = true
					}
					break
				}
				req = int(tail)
			} else if recs > 0 {
				req = int(min(int64(req), satMulAdd(recs, int64(c.ibs), 0)))
			}
			if req == 0 {
				break // chunk full
			}
			n, err := c.readOnce(buf[pos+pend:pos+req], pend)
			if recs == 0 {
				tailDone = true
			}
			short, raw := n+pend < req, n
			if n > 0 || pend > 0 {
				n += pend
				pend = 0
				if c.P.Fullblock && err == nil && short && n%c.ibs != 0 && n > c.ibs {
					// Whole records go on now; the rest waits for
					// the rest of its record.
					pend = n % c.ibs
					n -= pend
				}
				ddSize := c.ibs // the size of dd's read here
				if recs == 0 {
					ddSize = req
				}
				c.noteRead(n, ddSize)
				full, rem := n/c.ibs, n%c.ibs
				if full > 0 {
					ch.recs = append(ch.recs, run{off: off, size: c.ibs, count: int64(full)})
					off += int64(full * c.ibs)
				}
				pos += full * c.ibs
				if rem > 0 {
					size := rem
					if c.P.Sync {
						clear(buf[pos+rem : pos+c.ibs])
						size = c.ibs
					}
					ch.recs = append(ch.recs, run{off: off, size: size, count: 1, partial: true})
					off += int64(size)
					pos += size
				}
				records += int64(full)
				if rem > 0 {
					records++
				}
			}
			if err == io.EOF || (err == nil && raw == 0) {
				ch.eof = true
				end = true
				break
			}
			if err != nil {
				if c.P.Noerror {
					// dd reports, prints its statistics, and goes on
					// (pipes cannot seek past the bad part).
					ch.notes = append(ch.notes, note{pos: pos, err: &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}})
					continue
				}
				ch.err = &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}
				end = true
				break
			}
			if pend > 0 {
				break // the chunk goes on; the pending bytes are carried
			}
			if n < req {
				// The input is slower than we are: pass on what we have.
				break
			}
		}
		ch.n = pos
		if pend > 0 && unit == 1 {
			carry = append(spare, buf[pos:pos+pend]...)
		}
		if !end && unit > 1 {
			keep := pos / unit * unit
			if keep == 0 && pos < c.chunk-c.ibs {
				// Not a whole unit yet: keep reading into this chunk,
				// in place.
				held, carry = buf, buf[:pos+pend]
				carryRecs, carryNotes = ch.recs, ch.notes
				continue
			}
			carry = append(spare, buf[keep:pos+pend]...)
			split := ch.off + int64(keep)
			i := len(ch.recs)
			for i > 0 && ch.recs[i-1].off >= split {
				i--
			}
			carryRecs = append([]run(nil), ch.recs[i:]...)
			ch.recs = ch.recs[:i]
			j := len(ch.notes)
			for j > 0 && ch.notes[j-1].pos > keep {
				j--
			}
			for _, nt := range ch.notes[j:] {
				carryNotes = append(carryNotes, note{pos: nt.pos - keep, err: nt.err})
			}
			ch.notes = ch.notes[:j]
			ch.n = keep
		}
		close(ch.done)
		select {
		case queue <- ch:
		case <-ctx.Done():
			return
		}
		if end {
			return
		}
	}
}

// partialReadWarning is dd's warning after a short read when bs= is given.
func partialReadWarning(n int) string {
	unit := "bytes"
	if n == 1 {
		unit = "byte"
	}
	return "warning: partial read (" + itoa(n) + " " + unit + "); suggest iflag=fullblock"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// readParallel reads a regular file or block device with several reads in
// flight (native AIO with O_DIRECT, else a goroutine per pread, at
// increasing offsets); chunks reach the writer in order.
// Reads of such inputs return full records until the end, so the result is
// the one dd's sequential reads give.
func (c *Copier) readParallel(ctx context.Context, start int64, free chan []byte, queue chan<- *chunk) {
	limit := c.In.Size - start
	if c.P.Count >= 0 {
		limit = min(limit, c.P.CountLimit())
	}
	limit = max(limit, 0)
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, c.Readers)
		off  int64
		done bool
	)
	aio := c.startAIO()
	defer func() {
		wg.Wait()
		aio.stop()
		// Leave the file offset where dd's reads would have left it, for
		// scripts that share the descriptor: { blkcat count=1; cat; } <img.
		c.In.F.Seek(start+min(off, limit), io.SeekStart)
	}()
	for !done {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return
		}
		want := min(int64(c.chunk), limit-off)
		ch := &chunk{buf: buf, off: off, done: make(chan struct{})}
		if want <= 0 {
			ch.eof = true
			close(ch.done)
			queue <- ch
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			free <- buf
			return
		}
		queue <- ch
		wg.Add(1)
		finish := func() { <-sem; close(ch.done); wg.Done() }
		if !aio.read(ch, start+off, int(want), finish) {
			c.preadAsync(ch, start+off, int(want), finish)
		}
		off += want
		if off >= limit {
			done = true
			// The last chunk was queued; mark the end after it.
			last := &chunk{eof: true, off: off, done: make(chan struct{})}
			close(last.done)
			queue <- last
		}
	}
}

// preadAsync runs preadChunk on a goroutine of its own, then finish.
func (c *Copier) preadAsync(ch *chunk, at int64, want int, finish func()) {
	go func() {
		defer finish()
		c.preadChunk(ch, at, want)
	}()
}

// preadChunk fills ch with want bytes read at file offset at, in pieces of
// at most 1 MiB, and accounts its records. After a read error it goes on
// record by record, as dd reads, so the error lands on the right record.
func (c *Copier) preadChunk(ch *chunk, at int64, want int) {
	n := 0
	var err error
	for n < want {
		piece := min(want-n, c.PieceSize)
		p := ch.buf[n : n+piece]
		var m int
		if c.In.Direct && (piece%c.In.Align != 0 || (at+int64(n))%int64(c.In.Align) != 0) {
			// An unaligned tail cannot be read with O_DIRECT: read it
			// through the page cache (dd turns O_DIRECT off likewise).
			m, err = preadBuffered(c.In.F, p, at+int64(n))
		} else {
			m, err = c.In.F.ReadAt(p, at+int64(n))
		}
		n += m
		if err == io.EOF || (err != nil && errors.Is(err, unix.EINVAL) && c.In.Direct && m > 0) {
			err = nil
			ch.eof = true
			break
		}
		if err != nil || m < piece {
			ch.eof = err == nil
			break
		}
	}
	if c.In.Nocache && n > 0 {
		blockdev.DropCache(c.In.F, at, int64(n))
	}
	// Whole records read so far, then the rest record by record on error.
	full := n / c.ibs
	if err == nil {
		c.addRecords(ch, 0, n)
		return
	}
	c.addRecords(ch, 0, full*c.ibs)
	pos := full * c.ibs // stream bytes in ch
	src := full * c.ibs // bytes of the input consumed
	partread := 0       // dd's partread: the length of the last read if it was short
	for src < want {
		size := min(c.ibs, want-src)
		if c.P.Sync {
			// dd zeroes its buffer before each read with
			// conv=noerror,sync and pads a failed record with what is
			// there: an O_DIRECT read that failed may have put part of
			// the record there.
			clear(ch.buf[pos : pos+c.ibs])
		}
		m, rerr := c.preadRecord(ch.buf[pos:pos+size], at+int64(src))
		for c.P.Fullblock && rerr == nil && 0 < m && m < size {
			// iflag=fullblock reads on; dd drops a record whose
			// later read fails (the bytes stay in its buffer).
			k, err := c.preadRecord(ch.buf[pos+m:pos+size], at+int64(src+m))
			if k == 0 && err == nil {
				break
			}
			m, rerr = m+k, err
		}
		if rerr != nil {
			e := &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: rerr}
			if !c.P.Noerror {
				ch.err = e
				return
			}
			ch.notes = append(ch.notes, note{pos: pos, err: e})
			// As dd: seek past the rest of the record a short read
			// began (all of it after a full read), and with conv=sync
			// write zeros for it unless that short read, padded, stood
			// for it already. dd keeps partread until the next good
			// read, so a bad stretch longer than that puts its reads
			// off the record grid; this one stays on the chunk's, the
			// one place its bytes can differ from dd's.
			src += c.ibs - partread
			if c.P.Sync && partread == 0 {
				ch.recs = append(ch.recs, run{off: ch.off + int64(pos), size: c.ibs, count: 1, partial: true})
				pos += c.ibs
				ch.n = pos
			}
			continue
		}
		if m == 0 {
			ch.eof = true
			return
		}
		c.addRecords(ch, pos, pos+m)
		pos = ch.n
		src += m
		partread = 0
		if m < c.ibs {
			partread = m
		}
	}
}

// preadRecord reads one record at off with a single pread(2), as dd's read
// of ibs bytes: through the page cache, which returns the bytes before a
// bad sector as a short read (a read that went on to the bad sector, as
// os.File.ReadAt does, lost them), or with O_DIRECT when iflag=direct asked
// for it and the record is aligned, where the whole read fails as dd's
// does.
func (c *Copier) preadRecord(p []byte, off int64) (int, error) {
	f := c.In.F
	if !c.In.UserDirect || !c.In.Direct || len(p)%c.In.Align != 0 || off%int64(c.In.Align) != 0 || !blockdev.IsAligned(p, c.In.Align) {
		g, err := os.Open("/proc/self/fd/" + itoa(int(f.Fd())))
		if err != nil {
			return 0, err
		}
		defer g.Close()
		f = g
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Pread(int(fd), p, off)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &os.PathError{Op: "read", Path: c.In.Name, Err: rerr}
	}
	return n, nil
}

// addRecords accounts the input bytes buf[from:to] of ch, read by one
// request, as dd's records: full ones and a short last one, padded with
// conv=sync. It sets ch.n to the end of the stream bytes.
func (c *Copier) addRecords(ch *chunk, from, to int) {
	n := to - from
	full, rem := n/c.ibs, n%c.ibs
	if full > 0 {
		ch.recs = append(ch.recs, run{off: ch.off + int64(from), size: c.ibs, count: int64(full)})
	}
	end := from + full*c.ibs
	if rem > 0 {
		size := rem
		if c.P.Sync {
			clear(ch.buf[end+rem : end+c.ibs])
			size = c.ibs
		}
		ch.recs = append(ch.recs, run{off: ch.off + int64(end), size: size, count: 1, partial: true})
		end += size
	}
	ch.n = end
}

// preadBuffered reads at off through a separate descriptor without
// O_DIRECT, for the unaligned tail of an O_DIRECT input.
func preadBuffered(f *os.File, p []byte, off int64) (int, error) {
	g, err := os.Open("/proc/self/fd/" + itoa(int(f.Fd())))
	if err != nil {
		return 0, err
	}
	defer g.Close()
	n, err := g.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// mapBuffers returns up to n buffers of size bytes aligned to align, each
// in anonymous memory mapped for it, and a function that unmaps them.
// O_DIRECT reads into Go heap buffers were slower than dd's into malloc'd
// memory, and into such a mapping they match dd's (commit d0bb149). It maps
// fewer buffers (at least one) when the kernel will not commit more, or
// when more would exceed the machine's RAM, and fails with ENOMEM when it
// cannot map one, as dd's malloc fails: the Go heap would not fail but
// kill the process.
func mapBuffers(n, size, align int) ([][]byte, func(), error) {
	page := os.Getpagesize()
	extra := 0
	if align > page {
		extra = align - page // mmap aligns to pages; slice to align
	}
	if size > math.MaxInt-extra-page {
		return nil, nil, unix.ENOMEM
	}
	length := (size + extra + page - 1) / page * page
	ram := uint64(math.MaxUint64)
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil && si.Totalram > 0 {
		ram = uint64(si.Totalram) * uint64(max(si.Unit, 1))
	}
	var maps, bufs [][]byte
	release := func() {
		for _, m := range maps {
			unix.Munmap(m)
		}
	}
	for i := 0; i < n; i++ {
		if i > 0 && uint64(i+1)*uint64(length) > ram {
			break
		}
		mem, err := unix.Mmap(-1, 0, max(length, page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			if i == 0 {
				return nil, nil, err
			}
			break
		}
		maps = append(maps, mem)
		off := 0
		if align > page {
			if rem := int(uintptr(unsafe.Pointer(&mem[0])) & uintptr(align-1)); rem != 0 {
				off = align - rem
			}
		}
		bufs = append(bufs, mem[off:off+size:off+size])
	}
	return bufs, release, nil
}
