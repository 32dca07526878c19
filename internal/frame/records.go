package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RecordWriter writes a delta stream record by record, at source offsets
// the caller chooses, and END with a digest the caller computed: for a
// sender that knows which blocks changed (from snapshot metadata) and the
// new whole-source digest (from a leaf map of the base, see
// internal/digest), and so never reads the unchanged blocks. Unlike
// Writer it does not hash what it is given. It compresses on the
// caller's goroutine; its methods must be called from one goroutine.
//
// The stream always has FlagDelta; WithExpectedBase adds FlagBase. It
// takes the Writer's options except WithFilter, and needs WithSourceSize.
// With WithStartOffset (a resumed changed-block delta) its records start
// at or after that offset.
//
// A failed RecordWriter stays failed: the first error (from the
// underlying writer or a misuse) is returned by every later call.
type RecordWriter struct {
	hdr              Header
	bw               *bufio.Writer
	comp             *compressor
	pos              int64 // source offset the next record may start at
	sent             int64 // where the last record or mark ends
	records, covered int64
	rec              []byte // record buffer: header + compressed payload
	err              error
	closed           bool
}

// NewRecordWriter writes the header to w and returns a RecordWriter.
func NewRecordWriter(w io.Writer, opts ...WriterOption) (*RecordWriter, error) {
	cfg := writerConfig{
		hdr: Header{Version: Version, BlockSize: DefaultBlockSize, SourceSize: -1, DigestAlg: DefaultDigest, Flags: FlagDelta},
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("frame: %w", err)
		}
	}
	cfg.hdr.Level = int8(cfg.level)
	switch {
	case cfg.filter != nil:
		return nil, fmt.Errorf("frame: %w: a RecordWriter takes no filter", ErrHeader)
	case cfg.hdr.SourceSize < 0:
		return nil, fmt.Errorf("frame: %w: a RecordWriter needs the source size", ErrHeader)
	}
	if err := cfg.finish(); err != nil {
		return nil, err
	}
	bs := int(cfg.hdr.BlockSize)
	c, err := newCompressor(cfg.hdr.Codec, cfg.level, bs)
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	rw := &RecordWriter{hdr: cfg.hdr, bw: bufio.NewWriterSize(w, 256<<10), comp: c, pos: cfg.hdr.StartOffset, sent: cfg.hdr.StartOffset,
		rec: make([]byte, 0, RecordHeaderLen+bs+bs/64+1024)}
	if _, err := rw.bw.Write(rw.hdr.marshal()); err != nil {
		c.close()
		return nil, fmt.Errorf("frame: write header: %w", err)
	}
	return rw, nil
}

// Header returns the header written to the stream.
func (rw *RecordWriter) Header() Header { return rw.hdr }

// Records returns the number of DATA and ZERO records written and the
// source bytes they cover.
func (rw *RecordWriter) Records() (records, covered int64) { return rw.records, rw.covered }

func (rw *RecordWriter) fail(err error) error {
	if rw.err == nil {
		rw.err = err
	}
	return rw.err
}

// place checks that a record of n bytes may start at off and writes a
// progress mark first when it leaves out a long run.
func (rw *RecordWriter) place(what string, off, n int64) error {
	if rw.err != nil {
		return rw.err
	}
	if rw.closed {
		return ErrClosed
	}
	if off < rw.pos || n < 1 || off > rw.hdr.SourceSize-n {
		return rw.fail(fmt.Errorf("frame: %s [%d, +%d) out of order or beyond the source size %d (next offset %d)", what, off, n, rw.hdr.SourceSize, rw.pos))
	}
	if off-rw.sent >= markInterval {
		rw.writeHeader(recHeader{typ: typeMark, offset: off})
	}
	return rw.err
}

func (rw *RecordWriter) writeHeader(rh recHeader) {
	var b [RecordHeaderLen]byte
	rh.put(b[:], &rw.hdr.StreamID)
	rw.write(b[:])
	rw.sent = max(rw.sent, rh.offset+rh.length)
}

func (rw *RecordWriter) write(b []byte) {
	if rw.err != nil {
		return
	}
	if _, err := rw.bw.Write(b); err != nil {
		rw.fail(fmt.Errorf("frame: write record: %w", err))
	}
}

// Data writes a DATA record of b (1 to BlockSize bytes) at source offset
// off, which must not precede the end of the last record. It does not
// keep b.
func (rw *RecordWriter) Data(off int64, b []byte) error {
	if len(b) > int(rw.hdr.BlockSize) {
		return rw.fail(fmt.Errorf("frame: DATA of %d bytes, block size %d", len(b), rw.hdr.BlockSize))
	}
	if err := rw.place("DATA", off, int64(len(b))); err != nil {
		return err
	}
	rh := recHeader{typ: typeData, offset: off, length: int64(len(b)), payloadCRC: crc(b)}
	if rw.hdr.Codec != CodecNone {
		out, ok := rw.comp.compress(rw.rec[:RecordHeaderLen], b)
		rw.rec = out[:0]
		if ok {
			rh.flags = rflagCompressed
			rh.storedLen = uint32(len(out) - RecordHeaderLen)
			rh.put(out, &rw.hdr.StreamID)
			rw.write(out)
			rw.counted(off, int64(len(b)))
			return rw.err
		}
	}
	rh.storedLen = uint32(len(b))
	rw.writeHeader(rh)
	rw.write(b)
	rw.counted(off, int64(len(b)))
	return rw.err
}

// Zero writes a ZERO record of n ≥ 1 bytes at source offset off.
func (rw *RecordWriter) Zero(off, n int64) error {
	if err := rw.place("ZERO", off, n); err != nil {
		return err
	}
	rw.writeHeader(recHeader{typ: typeZero, offset: off, length: n})
	rw.counted(off, n)
	return rw.err
}

func (rw *RecordWriter) counted(off, n int64) {
	rw.records++
	rw.covered += n
	rw.pos = off + n
	rw.sent = rw.pos
}

// Flush writes buffered records to the underlying writer.
func (rw *RecordWriter) Flush() error {
	if rw.err == nil {
		if err := rw.bw.Flush(); err != nil {
			rw.fail(fmt.Errorf("frame: write record: %w", err))
		}
	}
	return rw.err
}

// Close writes END, at the source size, with digest, the whole new
// source's digest of the header's algorithm, and flushes the underlying
// writer (it does not close it).
func (rw *RecordWriter) Close(digest [32]byte) error {
	if rw.closed {
		if rw.err != nil {
			return rw.err
		}
		return ErrClosed
	}
	rw.closed = true
	defer rw.comp.close()
	if rw.err != nil {
		rw.bw.Flush()
		return rw.err
	}
	if rw.hdr.SourceSize-rw.sent >= markInterval {
		rw.writeHeader(recHeader{typ: typeMark, offset: rw.hdr.SourceSize})
	}
	p := make([]byte, EndPayloadLen)
	binary.LittleEndian.PutUint64(p[0:], uint64(rw.records))
	binary.LittleEndian.PutUint64(p[8:], uint64(rw.covered))
	copy(p[16:], digest[:])
	rw.writeHeader(recHeader{typ: typeEnd, storedLen: EndPayloadLen, offset: rw.hdr.SourceSize, payloadCRC: crc(p)})
	rw.write(p)
	return rw.Flush()
}

// Abort ends the stream without END (the source failed): the records so
// far are flushed, and a receiver reads the stream as truncated. It
// returns err, or an earlier error.
func (rw *RecordWriter) Abort(err error) error {
	if err == nil {
		err = errors.New("frame: stream aborted")
	}
	rw.fail(err)
	if !rw.closed {
		rw.closed = true
		rw.comp.close()
		rw.bw.Flush()
	}
	return rw.err
}
