package frame

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/blkpipe/blkpipe/internal/digest"
)

// DefaultConcurrency is the Writer's and Reader's number of codec
// goroutines unless set: GOMAXPROCS, capped at MaxDefaultConcurrency so
// that memory stays bounded on large machines (about 3 block buffers per
// goroutine are in flight).
func DefaultConcurrency() int {
	return min(runtime.GOMAXPROCS(0), MaxDefaultConcurrency)
}

// MaxDefaultConcurrency caps DefaultConcurrency; WithConcurrency may ask
// for more.
const MaxDefaultConcurrency = 8

// WriterOption configures a Writer. Each checks its value and returns an
// error wrapping ErrHeader when it is out of range.
type WriterOption func(*writerConfig) error

type writerConfig struct {
	hdr     Header
	level   int
	workers int
	filter  func(off int64, block []byte) bool
	idSet   bool
}

// WithDigest selects the algorithm of END's whole-source digest:
// DigestBLAKE3 (the default, hashed on WithConcurrency goroutines) or
// DigestSHA256 (one serial pass, for receivers that predate BLAKE3).
func WithDigest(alg DigestAlg) WriterOption {
	return func(cfg *writerConfig) error {
		if !alg.valid() {
			return fmt.Errorf("%w: unknown digest algorithm %d", ErrHeader, uint8(alg))
		}
		cfg.hdr.DigestAlg = alg
		return nil
	}
}

// WithCodec selects the codec and level: CodecNone (the default), CodecLZ4
// (level ignored, 0) or CodecZstd with level 1–22 (0 means
// DefaultZstdLevel). ParseCodec's results can be passed straight in.
func WithCodec(c Codec, level int) WriterOption {
	return func(cfg *writerConfig) error {
		switch {
		case !c.valid():
			return fmt.Errorf("%w: unknown %v", ErrHeader, c)
		case c == CodecZstd && level == 0:
			level = DefaultZstdLevel
		case c == CodecZstd && (level < 1 || level > MaxZstdLevel):
			return fmt.Errorf("%w: zstd level %d not in 1..%d", ErrHeader, level, MaxZstdLevel)
		case c != CodecZstd:
			level = 0
		}
		cfg.hdr.Codec, cfg.level = c, level
		return nil
	}
}

// WithBlockSize sets the block size: a multiple of 512 from MinBlockSize
// to MaxBlockSize. Default DefaultBlockSize (1 MiB).
func WithBlockSize(n int) WriterOption {
	return func(cfg *writerConfig) error {
		if n < MinBlockSize || n > MaxBlockSize || n%512 != 0 {
			return fmt.Errorf("%w: block size %d not a multiple of 512 in [%d, %d]", ErrHeader, n, MinBlockSize, MaxBlockSize)
		}
		cfg.hdr.BlockSize = uint32(n)
		return nil
	}
}

// WithSourceSize declares the source size, n ≥ 0, in the header. Close
// then fails with ErrSourceSize unless exactly n bytes were fed (through
// HashOnly and Write), and Write fails as soon as more are. Default -1,
// unknown.
func WithSourceSize(n int64) WriterOption {
	return atLeast("source size", n, 0, func(cfg *writerConfig) { cfg.hdr.SourceSize = n })
}

// WithConcurrency sets the number of compression goroutines, n ≥ 1.
// Default DefaultConcurrency(). The stream's bytes do not depend on it.
func WithConcurrency(n int) WriterOption {
	return atLeast("concurrency", n, 1, func(cfg *writerConfig) { cfg.workers = n })
}

// WithStreamID sets the stream id instead of 16 random bytes (for tests
// and reproducible streams).
func WithStreamID(id [16]byte) WriterOption {
	return func(cfg *writerConfig) error {
		cfg.hdr.StreamID, cfg.idSet = id, true
		return nil
	}
}

// WithFilter makes a delta stream (FlagDelta): the Writer calls keep with
// each block's source offset and bytes (valid only during the call), in
// source order, from one of its own goroutines, and sends only blocks for
// which it returns true. Blocks left out are still hashed into
// END's digest, so the whole source must still be fed.
func WithFilter(keep func(off int64, block []byte) bool) WriterOption {
	return func(cfg *writerConfig) error {
		if keep == nil {
			return fmt.Errorf("%w: nil filter", ErrHeader)
		}
		cfg.filter = keep
		cfg.hdr.Flags |= FlagDelta
		return nil
	}
}

// WithExpectedBase names the copy the target must hold before the stream
// is applied, size bytes whose digest (of the stream's digest algorithm)
// is digest: it sets FlagBase and FlagDelta. Only a RecordWriter takes it.
func WithExpectedBase(size int64, digest [32]byte) WriterOption {
	return atLeast("base size", size, 0, func(cfg *writerConfig) {
		cfg.hdr.Flags |= FlagBase | FlagDelta
		cfg.hdr.BaseSize, cfg.hdr.BaseDigest = size, digest
	})
}

// WithStartOffset makes a resume stream starting at source offset off ≥ 0:
// the first byte passed to Write is the source's byte at off. END's digest
// still covers the whole source, so the caller must pass the source's
// first off bytes to HashOnly before the first Write. Default 0.
func WithStartOffset(off int64) WriterOption {
	return atLeast("start offset", off, 0, func(cfg *writerConfig) { cfg.hdr.StartOffset = off })
}

// atLeast returns the option that calls set when n is at least low and
// otherwise fails with ErrHeader naming what and n.
func atLeast[T int | int64](what string, n, low T, set func(*writerConfig)) WriterOption {
	return func(cfg *writerConfig) error {
		if n < low {
			return fmt.Errorf("%w: %s %d", ErrHeader, what, n)
		}
		set(cfg)
		return nil
	}
}

// Writer writes a framed stream. Feed it the source in order with Write
// (any chunk sizes), then Close, which writes END. Its methods must be
// called from one goroutine; compression runs on its own goroutines.
//
// A failed Writer stays failed: the first error (from the underlying
// writer, a codec, or a misuse) is returned by every later call.
type Writer struct {
	hdr    Header
	filter func(int64, []byte) bool
	bs     int64

	fed     int64 // source bytes fed (HashOnly and Write): offset of the next byte
	writing bool  // Write has been called

	seg      int64  // segment size: bs, or a multiple of it near 1 MiB
	block    []byte // segment being filled, from segs
	blockOff int64  // source offset of block[0]

	sum summer // END's digest, fed by HashOnly and Write
	// pieces is sum's BLAKE3 Hasher when the workers hash the blocks
	// (blocks of one digest piece, see NewWriter): each worker hashes
	// its block right after (or before) it checksums and compresses it,
	// while the block is in its core's cache, and the output goroutine
	// adds the sums in order. Nil when Write feeds sum.
	pieces *digest.Hasher

	// The dispatch goroutine's state: it takes full blocks in order
	// and sends them on as records.
	full             chan fullBlock
	dispatched       chan struct{} // closed when dispatch ends
	zeroOff, zeroLen int64         // pending run of zero blocks
	records, covered int64
	sent             int64 // source offset where the last record or mark queued ends

	blocks *pool // block buffers, bs bytes
	segs   *pool // segment buffers, seg bytes (blocks when seg == bs)
	outs   *pool // encoded records: header + payload

	jobs  chan job
	queue chan chan result
	wg    sync.WaitGroup // workers
	out   chan struct{}  // closed when the output goroutine ends
	bw    *bufio.Writer

	mu     sync.Mutex
	err    error // sticky
	closed bool
	digest [32]byte
}

type fullBlock struct {
	off int64
	b   []byte
	ref *lent // set when b is part of a WriteOwned buffer
}

type job struct {
	off      int64
	block    *[]byte
	ref      *lent
	res      chan result
	hashOnly bool // a block left out or zero: only hashed (pieces)
}

// lent counts the blocks of a WriteOwned buffer still in flight, plus one
// for WriteOwned itself while it cuts the buffer; the last done releases it.
type lent struct {
	n       atomic.Int32
	release func()
}

func (l *lent) done() {
	if l.n.Add(-1) == 0 {
		l.release()
	}
}

// recycle returns a block the Writer is done with: to the caller that lent
// it, or to the pool.
func (fw *Writer) recycle(b *[]byte, ref *lent) {
	if ref != nil {
		ref.done()
		return
	}
	fw.blocks.put(b)
}

type result struct {
	rec   *[]byte // encoded record, returned to outs after writing
	b     []byte  // bytes to write when rec is nil (small records)
	block *[]byte // a raw DATA payload written after b, then recycled
	ref   *lent   // block's lender, if any
	sum   *digest.PieceSum
	// reached, if set, is closed when the output goroutine gets to
	// this result: every sum before it has been added.
	reached chan struct{}
}

// NewWriter writes the header to w and returns a Writer that frames the
// source fed to it. Options are applied in order; the first invalid one
// is returned.
func NewWriter(w io.Writer, opts ...WriterOption) (*Writer, error) {
	cfg := writerConfig{
		hdr: Header{Version: Version, BlockSize: DefaultBlockSize, SourceSize: -1, DigestAlg: DefaultDigest},
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("frame: %w", err)
		}
	}
	if cfg.workers == 0 {
		cfg.workers = DefaultConcurrency()
	}
	cfg.hdr.Level = int8(cfg.level)
	if cfg.hdr.Base() {
		// A base stream's END digest is not the digest of what is fed.
		return nil, fmt.Errorf("frame: %w: WithExpectedBase needs a RecordWriter", ErrHeader)
	}
	if err := cfg.finish(); err != nil {
		return nil, err
	}
	bs := int(cfg.hdr.BlockSize)
	// Small blocks (a delta stream's 4 KiB) travel to dispatch in
	// segments of about 1 MiB: one hand-off per block cost a second of
	// CPU per 4 GiB.
	seg := bs * max(1, DefaultBlockSize/bs)
	fw := &Writer{
		hdr:      cfg.hdr,
		filter:   cfg.filter,
		bs:       int64(bs),
		seg:      int64(seg),
		sum:      newSummer(cfg.hdr.DigestAlg, cfg.workers, false, cfg.hdr.SourceSize),
		blockOff: cfg.hdr.StartOffset,
		sent:     cfg.hdr.StartOffset,
		// In flight: a block being filled, one waiting for dispatch
		// and one in it, one per worker, and up to workers+1 encoded
		// records (or raw blocks) waiting for their turn to be written,
		// which keeps every worker busy while one record is written
		// (memory: about 2×workers+5 blocks, or with small blocks 3
		// segments of about 1 MiB and the blocks queued).
		full:       make(chan fullBlock, 1),
		dispatched: make(chan struct{}),
		jobs:       make(chan job),
		queue:      make(chan chan result, cfg.workers+1),
		blocks:     newPool(2*cfg.workers+6, bs),
		outs:       newPool(cfg.workers+3, RecordHeaderLen+bs+bs/64+1024),
		out:        make(chan struct{}),
		bw:         bufio.NewWriterSize(w, 64<<10),
	}
	fw.segs = fw.blocks
	if seg != bs {
		fw.segs = newPool(4, seg)
	}
	if b, ok := fw.sum.(blake3Summer); ok && bs == digest.PieceSize && cfg.hdr.StartOffset%digest.PieceSize == 0 {
		// Blocks are the digest's pieces: the workers hash them (the
		// prefix before a start offset is still written to sum).
		fw.pieces = b.Hasher
	}
	comps := make([]*compressor, cfg.workers)
	for i := range comps {
		c, err := newCompressor(cfg.hdr.Codec, cfg.level, bs)
		if err != nil {
			for _, c := range comps[:i] {
				c.close()
			}
			return nil, fmt.Errorf("frame: %w", err)
		}
		comps[i] = c
	}
	if _, err := fw.bw.Write(fw.hdr.marshal()); err != nil {
		return nil, fmt.Errorf("frame: write header: %w", err)
	}
	for _, c := range comps {
		fw.wg.Add(1)
		go fw.work(c)
	}
	go fw.output()
	go fw.dispatch()
	return fw, nil
}

// finish validates the header the options made and picks the stream id
// unless one was given.
func (cfg *writerConfig) finish() error {
	if err := cfg.hdr.validate(); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	if !cfg.idSet {
		if _, err := rand.Read(cfg.hdr.StreamID[:]); err != nil {
			return fmt.Errorf("frame: stream id: %w", err)
		}
	}
	return nil
}

// Header returns the header written to the stream.
func (fw *Writer) Header() Header { return fw.hdr }

func (fw *Writer) setErr(err error) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err == nil {
		fw.err = err
	}
	return fw.err
}

func (fw *Writer) getErr() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

// HashOnly feeds the source's bytes before the start offset (see
// WithStartOffset) into END's digest without sending them. It may only be
// called before the first Write, for at most StartOffset bytes in all.
func (fw *Writer) HashOnly(p []byte) (int, error) {
	if err := fw.getErr(); err != nil {
		return 0, err
	}
	if fw.closed {
		return 0, ErrClosed
	}
	if fw.writing || fw.fed+int64(len(p)) > fw.hdr.StartOffset {
		return 0, fw.setErr(fmt.Errorf("frame: HashOnly of %d bytes at source offset %d: only the %d bytes before the start offset may be hashed, before the first Write", len(p), fw.fed, fw.hdr.StartOffset))
	}
	fw.sum.Write(p)
	fw.fed += int64(len(p))
	return len(p), nil
}

// Write feeds the next len(p) source bytes. It copies them into blocks
// cut at multiples of the block size in source offsets and hands full
// blocks (in segments of about 1 MiB when blocks are small) to the
// Writer's goroutines, which apply the filter and compress them; Write
// blocks when enough blocks are in flight. It hashes p into END's digest
// itself (SHA-256), or copies it for the BLAKE3 goroutines (BLAKE3 with
// 1 MiB blocks is hashed by the workers, block by block), so the caller
// should have its next read in flight meanwhile.
// It does not keep p.
func (fw *Writer) Write(p []byte) (int, error) { return fw.write(p, nil) }

// WriteOwned is Write without the copy: the Writer keeps p and sends its
// whole blocks from it, and calls release (once, from any of its
// goroutines, after an error too) when it no longer needs p; the caller
// must not change p until then. Parts of blocks (of segments, with blocks
// smaller than 1 MiB) are still copied, and so are the small blocks of a
// segment that the filter keeps or that are compressed. Close returns only
// after every release.
func (fw *Writer) WriteOwned(p []byte, release func()) (int, error) {
	ref := &lent{release: release}
	ref.n.Store(1)
	defer ref.done()
	return fw.write(p, ref)
}

func (fw *Writer) write(p []byte, ref *lent) (int, error) {
	if err := fw.getErr(); err != nil {
		return 0, err
	}
	if fw.closed {
		return 0, ErrClosed
	}
	if !fw.writing {
		if err := fw.checkPrefix(); err != nil {
			return 0, err
		}
		fw.writing = true
	}
	if fw.hdr.SourceSize >= 0 && fw.fed+int64(len(p)) > fw.hdr.SourceSize {
		return 0, fw.setErr(fmt.Errorf("frame: %w: source continues past its declared size %d", ErrSourceSize, fw.hdr.SourceSize))
	}
	fw.fed += int64(len(p))
	// BLAKE3 takes lent bytes whole, hashing them on its goroutines where
	// they are; SHA-256 is hashed piece by piece below.
	hashed := fw.pieces != nil || ref != nil && fw.sum.writeLent(p, ref)
	n := 0
	for len(p) > 0 {
		// Blocks end at multiples of bs in source offsets, so a resumed
		// stream cuts the same blocks as a full one; segments end at
		// multiples of seg, which is a multiple of bs.
		end := (fw.blockOff/fw.seg + 1) * fw.seg
		room := int(end-fw.blockOff) - len(fw.block)
		c := min(room, len(p))
		// Hash each piece, then copy or lend it. Hashing here, in the
		// caller's goroutine, keeps a serial SHA-256 running at full
		// speed for as long as the caller has data; handing blocks to
		// another goroutine for it left it idle a quarter of the time,
		// waiting for hand-offs. BLAKE3 only copies the bytes here and
		// hashes them on its own goroutines.
		if !hashed {
			fw.sum.Write(p[:c])
		}
		if ref != nil && len(fw.block) == 0 && c == room {
			// A whole block or segment: lend it. dispatch copies
			// the blocks of a segment it keeps, so a delta, which
			// keeps few, copies only those.
			ref.n.Add(1)
			fw.full <- fullBlock{off: fw.blockOff, b: p[:c:c], ref: ref}
			fw.blockOff += int64(c)
		} else {
			if fw.block == nil {
				fw.block = *fw.segs.get(0)
			}
			fw.block = append(fw.block, p[:c]...)
			if c == room {
				fw.sendBlock()
			}
		}
		p, n = p[c:], n+c
		if c == room {
			if err := fw.getErr(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (fw *Writer) checkPrefix() error {
	if fw.fed != fw.hdr.StartOffset {
		return fw.setErr(fmt.Errorf("frame: stream starts at source offset %d but only %d bytes were passed to HashOnly", fw.hdr.StartOffset, fw.fed))
	}
	return nil
}

// sendBlock hands the current segment to dispatch.
func (fw *Writer) sendBlock() {
	fw.full <- fullBlock{off: fw.blockOff, b: fw.block}
	fw.blockOff += int64(len(fw.block))
	fw.block = nil
}

// dispatch takes each segment's blocks, in source order, and leaves each
// out (filter), merges it into the pending zero run, or queues it for
// compression. It ends, flushing the zero run, when full is closed.
func (fw *Writer) dispatch() {
	defer close(fw.dispatched)
	for fb := range fw.full {
		if fw.getErr() == nil && fw.dispatchSegment(fb) {
			continue // the worker recycles it
		}
		if fb.ref != nil {
			fb.ref.done()
			continue
		}
		b := fb.b[:cap(fb.b)]
		fw.segs.put(&b)
	}
	if fw.getErr() == nil {
		fw.flushZeros()
	}
}

// dispatchSegment reports whether it queued the segment itself (a single
// block) for compression.
func (fw *Writer) dispatchSegment(fb fullBlock) bool {
	if fw.seg == fw.bs {
		return fw.dispatchBlock(fb.off, fb.b, true, fb.ref)
	}
	off, b := fb.off, fb.b
	for len(b) > 0 && fw.getErr() == nil {
		n := min(int64(len(b)), (off/fw.bs+1)*fw.bs-off)
		fw.dispatchBlock(off, b[:n], false, nil)
		off, b = off+n, b[n:]
	}
	return false
}

// dispatchBlock reports whether it queued b for compression. If b is not
// owned (part of a segment) it queues a copy of it instead; ref is b's
// lender, if any.
func (fw *Writer) dispatchBlock(off int64, b []byte, owned bool, ref *lent) bool {
	if fw.filter != nil && !fw.filter(off, b) {
		fw.flushZeros()
		if end := off + int64(len(b)); end-fw.sent >= markInterval {
			fw.queueMark(end)
		}
		return fw.queueHash(off, b, ref)
	}
	if isZero(b) {
		if fw.zeroLen > 0 && fw.zeroOff+fw.zeroLen != off {
			fw.flushZeros()
		}
		if fw.zeroLen == 0 {
			fw.zeroOff = off
		}
		fw.zeroLen += int64(len(b))
		if fw.zeroLen >= maxZeroRun {
			fw.flushZeros()
		}
		return fw.queueHash(off, b, ref)
	}
	fw.flushZeros()
	fw.records++
	fw.covered += int64(len(b))
	fw.sent = off + int64(len(b))
	bp := &b
	if !owned {
		bp = fw.blocks.get(len(b))
		*bp = append(*bp, b...)
	}
	res := make(chan result, 1)
	fw.queue <- res
	fw.jobs <- job{off: off, block: bp, ref: ref, res: res}
	return true
}

// queueHash queues block b (owned: a whole block, see dispatchSegment)
// for a worker to hash when the workers hash the blocks, and reports
// whether it did.
func (fw *Writer) queueHash(off int64, b []byte, ref *lent) bool {
	if fw.pieces == nil {
		return false
	}
	res := make(chan result, 1)
	fw.queue <- res
	fw.jobs <- job{off: off, block: &b, ref: ref, res: res, hashOnly: true}
	return true
}

// flushZeros queues the pending zero run as one ZERO record.
func (fw *Writer) flushZeros() {
	if fw.zeroLen == 0 {
		return
	}
	fw.records++
	fw.covered += fw.zeroLen
	fw.sent = fw.zeroOff + fw.zeroLen
	fw.queueHeader(recHeader{typ: typeZero, offset: fw.zeroOff, length: fw.zeroLen})
	fw.zeroLen = 0
}

// queueMark queues a progress mark at off: a delta stream that leaves out
// a long run of blocks tells the receiver every markInterval bytes that
// nothing before off will change, so it can hash its own copy of them
// while the sender reads on, instead of all at once after END.
func (fw *Writer) queueMark(off int64) {
	fw.sent = off
	fw.queueHeader(recHeader{typ: typeMark, offset: off})
}

// queueHeader queues a record that is only a header.
func (fw *Writer) queueHeader(rh recHeader) {
	b := make([]byte, RecordHeaderLen)
	rh.put(b, &fw.hdr.StreamID)
	res := make(chan result, 1)
	res <- result{b: b}
	fw.queue <- res
}

// work compresses blocks until jobs is closed.
func (fw *Writer) work(c *compressor) {
	defer fw.wg.Done()
	defer c.close()
	for j := range fw.jobs {
		src := *j.block
		var sum *digest.PieceSum
		if fw.pieces != nil {
			sum = digest.SumPiece(src, j.off/digest.PieceSize)
		}
		if j.hashOnly {
			fw.recycle(j.block, j.ref)
			j.res <- result{sum: sum}
			continue
		}
		rh := recHeader{typ: typeData, offset: j.off, length: int64(len(src)), payloadCRC: crc(src)}
		if fw.hdr.Codec != CodecNone {
			op := fw.outs.get(0)
			out, ok := c.compress((*op)[:RecordHeaderLen], src)
			if ok {
				rh.flags = rflagCompressed
				rh.storedLen = uint32(len(out) - RecordHeaderLen)
				rh.put(out, &fw.hdr.StreamID)
				*op = out
				fw.recycle(j.block, j.ref)
				j.res <- result{rec: op, sum: sum}
				continue
			}
			fw.outs.put(op)
		}
		// Stored raw: the output goroutine writes the header and then
		// the block itself, which saves copying it into a record.
		rh.storedLen = uint32(len(src))
		h := make([]byte, RecordHeaderLen)
		rh.put(h, &fw.hdr.StreamID)
		j.res <- result{b: h, block: j.block, ref: j.ref, sum: sum}
	}
}

// output writes results in the order they were queued. After an error it
// keeps draining so that producers never block, but writes nothing more.
func (fw *Writer) output() {
	defer close(fw.out)
	for res := range fw.queue {
		r := <-res
		if r.sum != nil {
			fw.pieces.AddPiece(r.sum)
		}
		if r.reached != nil {
			close(r.reached)
			continue
		}
		b := r.b
		if r.rec != nil {
			b = *r.rec
		}
		if fw.getErr() == nil {
			_, err := fw.bw.Write(b)
			if err == nil && r.block != nil {
				_, err = fw.bw.Write(*r.block)
			}
			// Flush whenever nothing else is waiting: records reach the
			// receiver without delay when the source is slow, and are
			// still coalesced when it is fast.
			if err == nil && len(fw.queue) == 0 {
				err = fw.bw.Flush()
			}
			if err != nil {
				fw.setErr(fmt.Errorf("frame: write record: %w", err))
			}
		}
		if r.rec != nil {
			fw.outs.put(r.rec)
		}
		if r.block != nil {
			fw.recycle(r.block, r.ref)
		}
	}
}

// Close flushes the last block and zero run, writes END with the digest
// of the whole source, flushes the underlying writer (it does not close
// it) and stops the Writer's goroutines. It must be called even after an
// error, to release them. If WithSourceSize was given and a different
// number of bytes was fed, it returns ErrSourceSize and writes no END, so
// the stream reads as truncated: after any error other than a write error,
// Close still flushes the records completed before it.
func (fw *Writer) Close() error {
	if fw.closed {
		if err := fw.getErr(); err != nil {
			return err
		}
		return ErrClosed
	}
	fw.closed = true
	if fw.getErr() == nil && !fw.writing {
		fw.checkPrefix()
	}
	if fw.getErr() == nil && len(fw.block) > 0 {
		fw.sendBlock()
	}
	close(fw.full)
	<-fw.dispatched
	if fw.getErr() == nil && fw.hdr.SourceSize >= 0 && fw.fed != fw.hdr.SourceSize {
		fw.setErr(fmt.Errorf("frame: %w: source ended at %d bytes, declared %d", ErrSourceSize, fw.fed, fw.hdr.SourceSize))
	}
	if fw.getErr() == nil {
		if fw.pieces != nil {
			// The output goroutine adds the pieces' sums: wait until
			// it has added the last.
			reached := make(chan struct{})
			res := make(chan result, 1)
			res <- result{reached: reached}
			fw.queue <- res
			<-reached
		}
		fw.digest = fw.sum.sum()
		b := make([]byte, RecordHeaderLen+EndPayloadLen)
		p := b[RecordHeaderLen:]
		binary.LittleEndian.PutUint64(p[0:], uint64(fw.records))
		binary.LittleEndian.PutUint64(p[8:], uint64(fw.covered))
		copy(p[16:], fw.digest[:])
		rh := recHeader{typ: typeEnd, storedLen: EndPayloadLen, offset: fw.fed, payloadCRC: crc(p)}
		rh.put(b, &fw.hdr.StreamID)
		res := make(chan result, 1)
		res <- result{b: b}
		fw.queue <- res
	}
	close(fw.jobs)
	close(fw.queue)
	fw.wg.Wait()
	<-fw.out
	fw.sum.close() // after output, which may add pieces to it
	// Flush even after an error: the records before it are valid, and a
	// stream that stops at a record boundary is the best start for a
	// resume. (After a write error bufio keeps failing, writing nothing.)
	if err := fw.bw.Flush(); err != nil {
		return fw.setErr(fmt.Errorf("frame: write record: %w", err))
	}
	return fw.getErr()
}

// Abort ends the stream after its source failed (a read error, an
// interrupt): like Close it flushes the records completed so far and stops
// the Writer's goroutines, but it never writes END, so a receiver reads the
// stream as truncated rather than verifying a copy of part of the source
// (which, for a source of unknown size, Close would vouch for). It returns
// err, or an earlier error of the Writer.
func (fw *Writer) Abort(err error) error {
	if err == nil {
		err = errors.New("frame: stream aborted")
	}
	fw.setErr(err)
	return fw.Close()
}

// Digest returns the digest of the whole source written in END (of
// Header().DigestAlg); it is valid after a successful Close.
func (fw *Writer) Digest() [32]byte { return fw.digest }

// maxZeroRun caps a ZERO record's length: the receiver hears of progress
// at least once per GiB of a long zero run, for 32 bytes. (A variable
// only so that a test can make it small.)
var maxZeroRun int64 = 1 << 30

// markInterval is the longest run of left-out source bytes after which a
// delta stream carries a progress mark (32 bytes per 16 MiB, 2 KiB per
// GiB; the receiver hashes at most that far behind the sender).
var markInterval int64 = 16 << 20

var zeros [64 << 10]byte

// isZero reports whether b is all zero bytes (bytes.Equal is a vectorised
// memequal, far faster than a byte loop).
func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
