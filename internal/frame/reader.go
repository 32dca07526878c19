package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/blkpipe/blkpipe/internal/digest"
)

// ReaderOption configures a Reader. Each checks its value.
type ReaderOption func(*readerConfig) error

type readerConfig struct {
	workers  int
	base     io.ReaderAt
	noVerify bool
	limit    int64 // 0: none; else the target's size + 1
	leaves   bool
}

// WithLimit tells the Reader the size of what the stream will be written
// to, n ≥ 0: any record reaching past n is refused (ErrRange) before it is
// hashed, decoded or returned. It bounds the work a stream of unknown
// source size can cause. A header declaring a larger source is left to
// the caller, which can word it better ("target is smaller"). Default
// none.
func WithLimit(n int64) ReaderOption {
	return func(cfg *readerConfig) error {
		if n < 0 {
			return fmt.Errorf("limit %d", n)
		}
		cfg.limit = n + 1
		return nil
	}
}

// WithVerify says whether the Reader computes the whole-source digest and
// checks it against END (ErrDigest). Default true. With false, records are
// still fully checked (CRC-32C, lengths, order, counts) but END's digest is
// only passed on (Record.Verified false): for a caller that verifies it
// itself, or when the digest is slower than the disk and the network (a
// SHA-256 stream's one serial pass, about 2 GB/s with SHA-NI; BLAKE3 is
// hashed on all cores).
func WithVerify(verify bool) ReaderOption {
	return func(cfg *readerConfig) error {
		cfg.noVerify = !verify
		return nil
	}
}

// WithDecoders sets the number of decode goroutines, n ≥ 1, which
// decompress and checksum records ahead of Next. Default
// DefaultConcurrency(). Records, errors and their order do not depend on it.
func WithDecoders(n int) ReaderOption {
	return func(cfg *readerConfig) error {
		if n < 1 {
			return fmt.Errorf("decoders %d", n)
		}
		cfg.workers = n
		return nil
	}
}

// WithBase gives the Reader the target's current contents, so it can
// verify END's whole-source digest for streams with gaps: a resume stream
// (bytes before the start offset) and a delta stream (blocks not sent).
// The Reader reads the gaps from base, in source order, as Next reaches
// them; the caller must not change those ranges meanwhile. Without a base
// such streams are returned unverified (Record.Verified false on END).
// Default none.
func WithBase(base io.ReaderAt) ReaderOption {
	return func(cfg *readerConfig) error {
		if base == nil {
			return errors.New("nil base")
		}
		cfg.base = base
		return nil
	}
}

// WithLeaves makes the Reader of a BLAKE3 stream keep the chaining value
// of every 64 KiB leaf of the source it hashes (internal/digest), 32 bytes
// per leaf, for Leaves after a verified END: a receiver keeps them as the
// target's digest map without reading it again. It has no effect on
// SHA-256 streams or with WithVerify(false). Default off.
func WithLeaves() ReaderOption {
	return func(cfg *readerConfig) error {
		cfg.leaves = true
		return nil
	}
}

// Record is one record of a stream, as returned by Reader.Next.
type Record struct {
	Type   RecordType
	Offset int64 // source offset; for End, the source size
	Length int64 // source bytes covered; 0 for End
	// Data holds a DATA record's decoded bytes. It is owned by the Reader
	// and valid until the next call to Next or Close.
	Data []byte

	// Set on End only.
	Records  int64    // DATA and ZERO records in the stream
	Covered  int64    // source bytes they cover
	Digest   [32]byte // digest of the whole source (Header.DigestAlg), as sha256sum or b3sum prints it
	Verified bool     // the Reader computed the digest and it matched
}

// Reader reads a framed stream. Its methods must be called from one
// goroutine; decoding runs ahead on its own goroutines.
type Reader struct {
	hdr   Header
	base  io.ReaderAt
	limit int64 // WithLimit's n; -1: none

	queue chan *item
	done  chan struct{}
	stop  sync.Once

	bufs *pool // payloads and decoded data, see getBuf

	recs chan checked // verify → Next

	// Next's state.
	err  error   // sticky; io.EOF after END
	held *[]byte // buffer behind the last Record.Data

	// verify's state.
	sum        summer // END's digest, of the header's algorithm
	hashed     int64  // source bytes hashed so far
	verifiable bool
	gapBuf     []byte
}

// item is one parsed record on its way to Next.
type item struct {
	typ        RecordType
	off, len   int64
	streamOff  int64
	payload    *[]byte
	compressed bool
	crc        uint32
	res        chan decoded // DATA: the decode goroutine's result

	records, covered int64
	digest           [32]byte

	err error // parse error; the stream ends here
}

type decoded struct {
	buf  *[]byte // buffer to recycle
	data []byte
	err  error
}

// parser is the state of the goroutine that reads records.
type parser struct {
	r                *Reader
	br               *bufio.Reader
	soff             int64 // stream offset of the next byte
	pos              int64 // source offset the next record may start at
	records, covered int64
	jobs             chan *item
}

// NewReader reads and validates the header from r (magic, version,
// checksum, then every field's limits) before it allocates anything
// sized by it, and returns a Reader positioned at the first record.
// Header errors wrap ErrBadMagic, ErrVersion, ErrHeaderChecksum, ErrHeader
// or ErrTruncated.
func NewReader(r io.Reader, opts ...ReaderOption) (*Reader, error) {
	var cfg readerConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("frame: %w", err)
		}
	}
	if cfg.workers == 0 {
		cfg.workers = DefaultConcurrency()
	}
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, n, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	fr := &Reader{
		hdr:  hdr,
		base: cfg.base,
		// In flight: one record being read, workers+1 queued for
		// verify (each holding its payload, then its decoded bytes),
		// one per decoder, one being hashed, and the one Next returned
		// last: about 2×workers+5 blocks.
		queue:      make(chan *item, cfg.workers+1),
		recs:       make(chan checked),
		bufs:       newPool(2*cfg.workers+5, min(int(hdr.BlockSize), 1<<20)),
		done:       make(chan struct{}),
		sum:        newSummer(hdr.DigestAlg, cfg.workers, cfg.leaves, -1),
		verifiable: !cfg.noVerify,
		limit:      cfg.limit - 1,
	}
	p := &parser{r: fr, br: br, soff: int64(n), pos: hdr.StartOffset, jobs: make(chan *item)}
	decs := make([]*decompressor, cfg.workers)
	for i := range decs {
		if decs[i], err = newDecompressor(hdr.Codec); err != nil {
			for _, d := range decs[:i] {
				d.close()
			}
			return nil, fmt.Errorf("frame: %w", err)
		}
	}
	for _, d := range decs {
		go fr.decode(d, p.jobs)
	}
	go p.run()
	go fr.verify()
	return fr, nil
}

func readHeader(br *bufio.Reader) (Header, int, error) {
	var h Header
	b := make([]byte, HeaderLen)
	if n, err := io.ReadFull(br, b[:len(Magic)]); err != nil {
		if !isEOF(err) {
			return h, 0, fmt.Errorf("frame: read header: %w", err)
		}
		if n == 0 {
			return h, 0, fmt.Errorf("frame: %w: empty input", ErrBadMagic)
		}
		return h, 0, fmt.Errorf("frame: %w: input is %d bytes", ErrBadMagic, n)
	}
	if string(b[:len(Magic)]) != Magic {
		return h, 0, fmt.Errorf("frame: %w: starts with %x", ErrBadMagic, b[:len(Magic)])
	}
	if _, err := io.ReadFull(br, b[len(Magic):]); err != nil {
		if !isEOF(err) {
			return h, 0, fmt.Errorf("frame: read header: %w", err)
		}
		return h, 0, fmt.Errorf("frame: at stream offset %d: %w: end of input in header", len(Magic), ErrTruncated)
	}
	le := binary.LittleEndian
	h.Version = le.Uint16(b[8:])
	if h.Version != Version {
		return h, 0, fmt.Errorf("frame: %w %d (this reader reads %d)", ErrVersion, h.Version, Version)
	}
	hlen := int(le.Uint16(b[10:]))
	if hlen < HeaderLen || hlen > MaxHeaderLen {
		return h, 0, fmt.Errorf("frame: %w: header length %d not in [%d, %d]", ErrHeader, hlen, HeaderLen, MaxHeaderLen)
	}
	if hlen > HeaderLen {
		b = append(b, make([]byte, hlen-HeaderLen)...)
		if _, err := io.ReadFull(br, b[HeaderLen:]); err != nil {
			if !isEOF(err) {
				return h, 0, fmt.Errorf("frame: read header: %w", err)
			}
			return h, 0, fmt.Errorf("frame: at stream offset %d: %w: end of input in header", HeaderLen, ErrTruncated)
		}
	}
	if got, want := crc(b[:hlen-4]), le.Uint32(b[hlen-4:]); got != want {
		return h, 0, fmt.Errorf("frame: %w: computed %08x, header says %08x", ErrHeaderChecksum, got, want)
	}
	h.Flags = le.Uint32(b[12:])
	h.BlockSize = le.Uint32(b[16:])
	h.Codec = Codec(b[20])
	h.Level = int8(b[21])
	h.SourceSize = int64(le.Uint64(b[24:]))
	h.StartOffset = int64(le.Uint64(b[32:]))
	copy(h.StreamID[:], b[40:56])
	if b[22] != ChecksumCRC32C {
		return h, 0, fmt.Errorf("frame: %w: unknown checksum algorithm %d", ErrHeader, b[22])
	}
	h.DigestAlg = DigestAlg(b[23])
	if h.Base() {
		if hlen < BaseHeaderLen {
			return h, 0, fmt.Errorf("frame: %w: base flag in a header of %d bytes, want at least %d", ErrHeader, hlen, BaseHeaderLen)
		}
		h.BaseSize = int64(le.Uint64(b[60:]))
		copy(h.BaseDigest[:], b[68:100])
		if r := le.Uint64(b[100:]); r != 0 {
			return h, 0, fmt.Errorf("frame: %w: base reserved bytes %#x", ErrHeader, r)
		}
	}
	if err := h.validate(); err != nil {
		return h, 0, fmt.Errorf("frame: %w", err)
	}
	return h, hlen, nil
}

// Leaves returns the leaf chaining values of the source after Next
// returned a verified END of a BLAKE3 stream read WithLeaves, else nil.
func (fr *Reader) Leaves() []digest.CV {
	if b, ok := fr.sum.(blake3Summer); ok && fr.verifiable && fr.err == io.EOF {
		return b.Leaves()
	}
	return nil
}

// Header returns the stream's validated header.
func (fr *Reader) Header() Header { return fr.hdr }

// Next returns the next record. DATA records come decoded and checked
// (record CRC, decoded length, payload CRC); ZERO records have no Data;
// the END record carries the counts and digest, which Next has checked
// against the stream, and against the data when it could compute the
// digest (Verified). After END, Next returns io.EOF. Any other error is
// sticky, wraps one of the package's sentinels and names the stream and
// source offsets.
//
// Decoding and hashing run ahead of Next on the Reader's goroutines, so
// the caller's work on a record (writing it out) overlaps with them.
func (fr *Reader) Next() (Record, error) {
	if fr.err != nil {
		return Record{}, fr.err
	}
	fr.release()
	o, ok := <-fr.recs
	if !ok {
		// Only after Close.
		fr.err = fmt.Errorf("frame: %w", ErrClosed)
		return Record{}, fr.err
	}
	if o.err != nil {
		return Record{}, fr.fail(o.err)
	}
	fr.held = o.buf
	if o.rec.Type == End {
		fr.err = io.EOF
		fr.Close()
	}
	return o.rec, nil
}

// checked is a record ready for Next, with the buffer behind its Data.
type checked struct {
	rec Record
	buf *[]byte
	err error
}

// verify takes parsed records in order, waits for their decoding, hashes
// them (and any gaps) into the whole-source digest, checks END, and hands
// them to Next.
func (fr *Reader) verify() {
	defer close(fr.recs)
	defer fr.sum.close()
	for it := range fr.queue {
		if it.typ == mark && it.err == nil {
			// Nothing before the mark will change: hash the target's
			// bytes up to it now, while the sender reads on.
			err := fr.hashGap(it.off)
			if err == nil {
				continue
			}
			it = &item{err: err}
		}
		c := fr.verifyOne(it)
		select {
		case fr.recs <- c:
		case <-fr.done:
			if c.buf != nil {
				fr.bufs.put(c.buf)
			}
			return
		}
		if c.err != nil || c.rec.Type == End {
			return
		}
	}
}

func (fr *Reader) verifyOne(it *item) checked {
	if it.err != nil {
		return checked{err: it.err}
	}
	rec := Record{Type: it.typ, Offset: it.off, Length: it.len}
	if err := fr.hashGap(it.off); err != nil {
		if it.res != nil {
			if d := <-it.res; d.buf != nil {
				fr.bufs.put(d.buf)
			}
		}
		return checked{err: err}
	}
	var buf *[]byte
	switch it.typ {
	case Data:
		d := <-it.res
		if d.err != nil {
			return checked{err: d.err}
		}
		buf, rec.Data = d.buf, d.data
		if fr.verifiable {
			fr.sum.Write(d.data)
		}
	case Zero:
		if fr.verifiable {
			for n := it.len; n > 0; {
				c := min(n, int64(len(zeros)))
				fr.sum.Write(zeros[:c])
				n -= c
			}
		}
	case End:
		rec.Records, rec.Covered, rec.Digest = it.records, it.covered, it.digest
		if fr.verifiable {
			if sum := fr.sum.sum(); sum != it.digest {
				return checked{err: fmt.Errorf("frame: at stream offset %d (source offset %d): %w: source hashes to %x, END says %x (%v)",
					it.streamOff, it.off, ErrDigest, sum, it.digest, fr.hdr.DigestAlg)}
			}
			rec.Verified = true
		}
	}
	fr.hashed = it.off + it.len
	return checked{rec: rec, buf: buf}
}

// hashGap hashes the source bytes before off that the stream does not
// carry, reading them from the base, or gives up verification.
func (fr *Reader) hashGap(off int64) error {
	if off <= fr.hashed || !fr.verifiable {
		return nil
	}
	if fr.base == nil {
		fr.verifiable = false
		return nil
	}
	if fr.gapBuf == nil {
		fr.gapBuf = make([]byte, 1<<20)
	}
	for fr.hashed < off {
		b := fr.gapBuf[:min(int64(len(fr.gapBuf)), off-fr.hashed)]
		n, err := fr.base.ReadAt(b, fr.hashed)
		if errors.Is(err, ErrNoBase) {
			fr.verifiable = false
			return nil
		}
		if n < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("frame: read base at offset %d to verify the digest: %w", fr.hashed+int64(n), err)
		}
		fr.sum.Write(b)
		fr.hashed += int64(n)
	}
	return nil
}

// getBuf returns a pooled buffer of length n ≤ block size. Buffers grow
// to what records actually need, so a hostile header claiming a 16 MiB
// block size costs nothing until records of that size arrive (and their
// caps have been checked).
func (fr *Reader) getBuf(n int) *[]byte {
	b := fr.bufs.get(n)
	*b = (*b)[:n]
	return b
}

func (fr *Reader) release() {
	if fr.held != nil {
		fr.bufs.put(fr.held)
		fr.held = nil
	}
}

func (fr *Reader) fail(err error) error {
	fr.err = err
	fr.Close()
	return err
}

// Close stops the Reader's goroutines and releases its buffers; it does
// not close the underlying reader. A goroutine blocked reading the
// underlying reader ends when that read returns. Close always returns nil.
func (fr *Reader) Close() error {
	fr.stop.Do(func() { close(fr.done) })
	fr.release()
	if fr.err == nil {
		fr.err = fmt.Errorf("frame: %w", ErrClosed)
	}
	return nil
}

// decode decompresses and checks DATA records until jobs is closed.
func (fr *Reader) decode(d *decompressor, jobs <-chan *item) {
	defer d.close()
	for it := range jobs {
		it.res <- fr.decodeOne(d, it)
	}
}

func (fr *Reader) decodeOne(d *decompressor, it *item) decoded {
	src := *it.payload
	if it.compressed {
		ob := fr.getBuf(int(it.len))
		out, err := d.decompress(*ob, src, int(it.len))
		fr.bufs.put(it.payload)
		if err != nil {
			fr.bufs.put(ob)
			return decoded{err: fmt.Errorf("frame: at stream offset %d (source offset %d): %w: %v", it.streamOff, it.off, ErrCorrupt, err)}
		}
		src = out
		it.payload = ob
	}
	if got := crc(src); got != it.crc {
		fr.bufs.put(it.payload)
		return decoded{err: fmt.Errorf("frame: at stream offset %d (source offset %d): %w: DATA computes %08x, record says %08x",
			it.streamOff, it.off, ErrChecksum, got, it.crc)}
	}
	return decoded{buf: it.payload, data: src}
}

// run parses records until END or an error, queueing each for Next.
func (p *parser) run() {
	defer close(p.r.queue)
	defer close(p.jobs)
	for {
		it := p.next()
		if it == nil {
			continue // ancillary record, skipped
		}
		if it.typ == Data && it.err == nil {
			it.res = make(chan decoded, 1)
		}
		select {
		case p.r.queue <- it:
		case <-p.r.done:
			return
		}
		if it.res != nil {
			select {
			case p.jobs <- it:
			case <-p.r.done:
				// verify may be waiting for this record's result.
				it.res <- decoded{err: fmt.Errorf("frame: %w", ErrClosed)}
				return
			}
		}
		if it.err != nil || it.typ == End {
			return
		}
	}
}

// readErr reports a failed read of the input (not its end) as such.
func (p *parser) readErr(err error) *item {
	return &item{err: fmt.Errorf("frame: read stream at offset %d (source offset %d): %w", p.soff, p.pos, err)}
}

func isEOF(err error) bool { return err == io.EOF || err == io.ErrUnexpectedEOF }

func (p *parser) errorf(srcOff int64, sentinel error, format string, args ...any) *item {
	return errorAt(p.soff, srcOff, sentinel, format, args...)
}

// errorAt is errorf at stream offset soff: the start of a record whose
// payload has been read, when the fault is in that record as a whole.
func errorAt(soff, srcOff int64, sentinel error, format string, args ...any) *item {
	return &item{err: fmt.Errorf("frame: at stream offset %d (source offset %d): %w: %s", soff, srcOff, sentinel, fmt.Sprintf(format, args...))}
}

// next reads one record header and payload, checking everything that
// does not need the payload decoded. It returns nil for an ancillary
// record it skipped.
func (p *parser) next() *item {
	hdr := &p.r.hdr
	var b [RecordHeaderLen]byte
	if n, err := io.ReadFull(p.br, b[:]); err != nil {
		if !isEOF(err) {
			return p.readErr(err)
		}
		if n == 0 {
			return p.errorf(p.pos, ErrTruncated, "end of input before END record, %d records read", p.records)
		}
		return p.errorf(p.pos, ErrTruncated, "end of input %d bytes into a record header (%v)", n, err)
	}
	le := binary.LittleEndian
	rh := recHeader{
		typ:        b[0],
		flags:      b[1],
		reserved:   le.Uint16(b[2:]),
		storedLen:  le.Uint32(b[4:]),
		offset:     int64(le.Uint64(b[8:])),
		length:     int64(le.Uint64(b[16:])),
		payloadCRC: le.Uint32(b[24:]),
	}
	if got, want := recordCRC(b[:28], &hdr.StreamID), le.Uint32(b[28:]); got != want {
		return p.errorf(p.pos, ErrChecksum, "record header computes %08x, says %08x (damaged, or from another stream)", got, want)
	}
	if rh.reserved != 0 {
		return p.errorf(rh.offset, ErrCorrupt, "record reserved bytes %#04x", rh.reserved)
	}
	bs := int64(hdr.BlockSize)
	stored := int64(rh.storedLen)
	it := &item{off: rh.offset, len: rh.length, streamOff: p.soff, crc: rh.payloadCRC}
	switch rh.typ {
	case typeData:
		it.typ = Data
		it.compressed = rh.flags&rflagCompressed != 0
		switch {
		case rh.flags&^rflagCompressed != 0:
			return p.errorf(rh.offset, ErrCorrupt, "DATA flags %#02x", rh.flags)
		case it.compressed && hdr.Codec == CodecNone:
			return p.errorf(rh.offset, ErrCorrupt, "compressed DATA in a stream without codec")
		case rh.length < 1:
			return p.errorf(rh.offset, ErrCorrupt, "DATA length %d", rh.length)
		case rh.length > bs || stored > bs:
			return p.errorf(rh.offset, ErrTooLarge, "DATA length %d stored %d, block size %d", rh.length, stored, bs)
		case it.compressed && stored > rh.length:
			return p.errorf(rh.offset, ErrTooLarge, "compressed DATA stored %d > length %d", stored, rh.length)
		case it.compressed && stored < 1:
			return p.errorf(rh.offset, ErrCorrupt, "compressed DATA of 0 bytes")
		case !it.compressed && stored != rh.length:
			return p.errorf(rh.offset, ErrCorrupt, "raw DATA stored %d != length %d", stored, rh.length)
		}
	case typeZero:
		it.typ = Zero
		switch {
		case rh.flags != 0 || rh.payloadCRC != 0:
			return p.errorf(rh.offset, ErrCorrupt, "ZERO flags %#02x checksum %08x", rh.flags, rh.payloadCRC)
		case stored != 0:
			return p.errorf(rh.offset, ErrTooLarge, "ZERO with %d payload bytes", stored)
		case rh.length < 1:
			return p.errorf(rh.offset, ErrCorrupt, "ZERO length %d", rh.length)
		}
	case typeEnd:
		it.typ = End
		switch {
		case rh.flags != 0 || rh.length != 0:
			return p.errorf(rh.offset, ErrCorrupt, "END flags %#02x length %d", rh.flags, rh.length)
		case stored > EndPayloadLen:
			return p.errorf(rh.offset, ErrTooLarge, "END payload %d bytes, want %d", stored, EndPayloadLen)
		case stored != EndPayloadLen:
			return p.errorf(rh.offset, ErrCorrupt, "END payload %d bytes, want %d", stored, EndPayloadLen)
		}
	case typeMark:
		it.typ = mark
		switch {
		case rh.flags != 0 || rh.payloadCRC != 0 || rh.length != 0:
			return p.errorf(rh.offset, ErrCorrupt, "progress mark flags %#02x checksum %08x length %d", rh.flags, rh.payloadCRC, rh.length)
		case stored != 0:
			return p.errorf(rh.offset, ErrTooLarge, "progress mark with %d payload bytes", stored)
		}
	default:
		if rh.typ >= 'a' && rh.typ <= 'z' {
			if stored > bs {
				return p.errorf(p.pos, ErrTooLarge, "ancillary record %q of %d bytes, block size %d", rh.typ, stored, bs)
			}
			p.soff += RecordHeaderLen
			if n, err := io.CopyN(io.Discard, p.br, stored); err != nil {
				if !isEOF(err) {
					return p.readErr(err)
				}
				return p.errorf(p.pos, ErrTruncated, "end of input %d bytes into a %d-byte ancillary payload (%v)", n, stored, err)
			}
			p.soff += stored
			return nil
		}
		return p.errorf(p.pos, ErrCorrupt, "unknown record type %#02x", rh.typ)
	}
	// Order and range; offsets are only trusted after these checks.
	switch {
	case rh.offset < p.pos:
		return p.errorf(rh.offset, ErrOrder, "%v at %d overlaps or precedes source offset %d already covered", it.typ, rh.offset, p.pos)
	case rh.offset > p.pos && !hdr.Delta():
		return p.errorf(rh.offset, ErrOrder, "%v at %d leaves a gap after %d in a stream without the delta flag", it.typ, rh.offset, p.pos)
	case rh.offset > maxInt64-rh.length:
		return p.errorf(rh.offset, ErrRange, "%v offset %d + length %d overflows", it.typ, rh.offset, rh.length)
	case hdr.SourceSize >= 0 && rh.offset+rh.length > hdr.SourceSize:
		return p.errorf(rh.offset, ErrRange, "%v [%d, %d) beyond source size %d", it.typ, rh.offset, rh.offset+rh.length, hdr.SourceSize)
	case it.typ == End && hdr.SourceSize >= 0 && rh.offset != hdr.SourceSize:
		return p.errorf(rh.offset, ErrRange, "END at %d, source size %d", rh.offset, hdr.SourceSize)
	case p.r.limit >= 0 && rh.offset+rh.length > p.r.limit:
		return p.errorf(rh.offset, ErrRange, "%v [%d, %d) beyond the limit of %d bytes", it.typ, rh.offset, rh.offset+rh.length, p.r.limit)
	}
	// Read the payload; every cap has been checked, so the buffer is at
	// most one block.
	p.soff += RecordHeaderLen
	if stored > 0 {
		var buf []byte
		if it.typ == Data {
			it.payload = p.r.getBuf(int(stored))
			buf = (*it.payload)[:stored]
		} else {
			buf = make([]byte, stored)
		}
		if n, err := io.ReadFull(p.br, buf); err != nil {
			if it.payload != nil {
				p.r.bufs.put(it.payload)
			}
			if !isEOF(err) {
				return p.readErr(err)
			}
			p.soff += int64(n)
			return p.errorf(rh.offset, ErrTruncated, "end of input %d bytes into a %d-byte %v payload", n, stored, it.typ)
		}
		if it.typ == Data {
			*it.payload = buf
		}
		p.soff += stored
		if it.typ == End {
			if got := crc(buf); got != rh.payloadCRC {
				return errorAt(it.streamOff, rh.offset, ErrChecksum, "END payload computes %08x, record says %08x", got, rh.payloadCRC)
			}
			it.records = int64(le.Uint64(buf[0:]))
			it.covered = int64(le.Uint64(buf[8:]))
			copy(it.digest[:], buf[16:48])
		}
	}
	if it.typ == End {
		if it.records != p.records || it.covered != p.covered {
			return errorAt(it.streamOff, rh.offset, ErrCorrupt, "END says %d records covering %d bytes, stream has %d covering %d",
				it.records, it.covered, p.records, p.covered)
		}
		var one [1]byte
		n, err := io.ReadFull(p.br, one[:])
		if n > 0 {
			return p.errorf(rh.offset, ErrTrailingData, "bytes follow the END record")
		}
		if !isEOF(err) {
			return p.readErr(err)
		}
		return it
	}
	if it.typ != mark {
		p.records++
		p.covered += rh.length
	}
	p.pos = rh.offset + rh.length
	return it
}

const maxInt64 = 1<<63 - 1

// Detect reports whether br's input starts with Magic, without consuming
// anything, so a receiver can peek at its input and hand the same
// bufio.Reader to NewReader, or copy it as raw data. An input shorter
// than the magic is not framed. Errors other than io.EOF are returned.
func Detect(br *bufio.Reader) (bool, error) {
	b, err := br.Peek(len(Magic))
	if err != nil && err != io.EOF {
		return false, err
	}
	return string(b) == Magic, nil
}
