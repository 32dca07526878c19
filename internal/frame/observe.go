package frame

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Observer follows a framed stream as its bytes go past and reports how far
// into the source the stream has got, so that a progress meter between
// blkcat and blkwrite (pvcat) can count source bytes rather than the
// compressed bytes on the wire. It is fed a copy of every byte of the
// stream, in order, through Write; it neither holds nor decodes payloads.
//
// It checks the header as a Reader does (magic, version, length, CRC,
// field limits) and every record header (record CRC, type, flags, length
// caps, order and range), but no payload: it is a meter, not a verifier.
// On anything it does not expect (not a framed stream, a damaged or
// unknown record, a byte after END) it stops observing for good: Err says
// why, Pos stays where it was, and Write goes on accepting bytes.
// Everything a Reader accepts, an Observer follows to the end.
//
// An Observer holds one header-sized buffer and allocates nothing while it
// observes, only the error that stops it. The zero value is ready to use.
// It is not concurrency-safe: the goroutine that feeds it reads it.
type Observer struct {
	state   obsState
	n       int             // bytes of the header or record header collected
	hlen    int             // header_len, once read
	hcrc    uint32          // CRC-32C of header bytes [64, hlen-4) so far
	buf     [HeaderLen]byte // the header's first 64 bytes, then record headers
	tail    [4]byte         // header_crc, when it lies beyond buf
	hdr     Header
	idCRC   uint32 // CRC-32C of the stream id: the record CRCs' salt
	pos     int64  // source offset reached
	base    int64  // DATA: pos before the record
	length  int64  // DATA: source bytes the record covers
	stored  int64  // payload bytes of the current record
	skipped int64  // payload bytes of it passed so far
	typ     byte   // current record's type
	off     int64  // stream bytes taken
	err     error
}

type obsState uint8

const (
	obsHeader  obsState = iota // collecting the header
	obsRecord                  // collecting a record header
	obsPayload                 // passing a payload
	obsEnd                     // END passed: nothing may follow
	obsStopped                 // not observing any more (err set)
)

// Write observes p, the next bytes of the stream. It always returns
// len(p), nil, so an Observer can sit behind an io.TeeReader or an
// io.MultiWriter without ever failing the copy.
func (o *Observer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && o.state != obsStopped {
		before := len(p)
		switch o.state {
		case obsHeader:
			p = o.header(p)
		case obsRecord:
			k := copy(o.buf[o.n:RecordHeaderLen], p)
			o.n += k
			p = p[k:]
			if o.n == RecordHeaderLen {
				o.n = 0
				o.record()
			}
		case obsPayload:
			k := int64(len(p))
			if left := o.stored - o.skipped; k > left {
				k = left
			}
			o.skipped += k
			p = p[k:]
			o.payload()
		case obsEnd:
			o.stop(fmt.Errorf("frame: %w", ErrTrailingData))
		}
		o.off += int64(before - len(p))
	}
	return n, nil
}

// Header returns the stream's header and true once the whole header has
// passed and checked out; until then, or if it did not, false.
func (o *Observer) Header() (Header, bool) {
	return o.hdr, o.hdr.Version == Version // set only once checked
}

// Pos returns the source offset the stream has reached: the header's
// start offset, moved on by each record as it passes. A DATA record
// moves it in proportion to its payload bytes seen, so a large compressed
// block shows steady progress; a ZERO record, a progress mark or END
// (which may leave a gap in a delta stream) moves it at once. It never
// decreases and never exceeds a known source size. 0 before the header.
func (o *Observer) Pos() int64 { return o.pos }

// Offset returns how many bytes of the stream the Observer has taken: all
// those written while it observes; once it stopped, those up to and
// including the byte, header or record header that stopped it. A meter
// that goes on counting wire bytes after a stop counts from here.
func (o *Observer) Offset() int64 { return o.off }

// Done reports whether the whole END record has passed: the stream is
// complete as far as the Observer checks it.
func (o *Observer) Done() bool { return o.state == obsEnd }

// Err returns why the Observer stopped observing, wrapping one of the
// package's sentinel errors (ErrBadMagic for input that is not a framed
// stream), or nil while it still observes.
func (o *Observer) Err() error { return o.err }

func (o *Observer) stop(err error) {
	o.state, o.err = obsStopped, err
}

// header takes header bytes from p and returns the rest of p.
func (o *Observer) header(p []byte) []byte {
	if o.n < HeaderLen {
		k := copy(o.buf[o.n:], p)
		for i := o.n; i < min(o.n+k, len(Magic)); i++ {
			if o.buf[i] != Magic[i] {
				var got [len(Magic)]byte // a copy: o.buf must not escape
				copy(got[:], o.buf[:i+1])
				o.stop(fmt.Errorf("frame: %w: starts with %x", ErrBadMagic, got[:i+1]))
				return p[i+1-o.n:]
			}
		}
		o.n += k
		p = p[k:]
		if o.n < HeaderLen {
			return p
		}
		le := binary.LittleEndian
		if v := le.Uint16(o.buf[8:]); v != Version {
			o.stop(fmt.Errorf("frame: %w %d", ErrVersion, v))
			return p
		}
		hlen := int(le.Uint16(o.buf[10:]))
		if hlen < HeaderLen || hlen > MaxHeaderLen {
			o.stop(fmt.Errorf("frame: %w: header length %d not in [%d, %d]", ErrHeader, hlen, HeaderLen, MaxHeaderLen))
			return p
		}
		// The CRC covers [0, hlen-4): all of buf when the header is
		// longer, the rest follows in later bytes (hcrc); the CRC's own
		// bytes may start inside buf.
		o.hlen = hlen
		o.hcrc = crc(o.buf[:min(HeaderLen, hlen-4)])
		for i := hlen - 4; i < HeaderLen; i++ {
			o.tail[i-(hlen-4)] = o.buf[i]
		}
	}
	for len(p) > 0 && o.n < o.hlen {
		k := min(len(p), o.hlen-o.n)
		for i, b := range p[:k] {
			if at := o.n + i; at < o.hlen-4 {
				o.hcrc = crc32.Update(o.hcrc, castagnoli, p[i:i+1])
			} else {
				o.tail[at-(o.hlen-4)] = b
			}
		}
		o.n += k
		p = p[k:]
	}
	if o.n == o.hlen {
		o.n = 0
		o.checkHeader()
	}
	return p
}

// checkHeader decodes and checks the complete header.
func (o *Observer) checkHeader() {
	b, le := o.buf[:], binary.LittleEndian
	if got, want := o.hcrc, le.Uint32(o.tail[:]); got != want {
		o.stop(fmt.Errorf("frame: %w: computed %08x, header says %08x", ErrHeaderChecksum, got, want))
		return
	}
	h := Header{
		Version:     le.Uint16(b[8:]),
		Flags:       le.Uint32(b[12:]),
		BlockSize:   le.Uint32(b[16:]),
		Codec:       Codec(b[20]),
		Level:       int8(b[21]),
		SourceSize:  int64(le.Uint64(b[24:])),
		StartOffset: int64(le.Uint64(b[32:])),
	}
	copy(h.StreamID[:], b[40:56])
	h.DigestAlg = DigestAlg(b[23])
	err := h.validate()
	if err == nil && b[22] != ChecksumCRC32C {
		err = fmt.Errorf("%w: unknown checksum algorithm %d", ErrHeader, b[22])
	}
	if err != nil {
		o.stop(fmt.Errorf("frame: %w", err))
		return
	}
	o.hdr, o.pos, o.state = h, h.StartOffset, obsRecord
	o.idCRC = crc(b[40:56]) // the stream id
}

// record checks the record header in buf and moves to its payload.
func (o *Observer) record() {
	b, le := o.buf[:RecordHeaderLen], binary.LittleEndian
	if got, want := crc32.Update(o.idCRC, castagnoli, b[:28]), le.Uint32(b[28:]); got != want {
		o.stop(fmt.Errorf("frame: source offset %d: %w: record header", o.pos, ErrChecksum))
		return
	}
	typ, flags := b[0], b[1]
	stored := int64(le.Uint32(b[4:]))
	off, length := int64(le.Uint64(b[8:])), int64(le.Uint64(b[16:]))
	bs := int64(o.hdr.BlockSize)
	var bad bool
	switch typ {
	case typeData:
		compressed := flags == rflagCompressed
		bad = flags&^rflagCompressed != 0 || compressed && o.hdr.Codec == CodecNone ||
			length < 1 || length > bs || stored > bs ||
			compressed && (stored < 1 || stored > length) || !compressed && stored != length
	case typeZero:
		bad = flags != 0 || stored != 0 || length < 1
	case typeEnd:
		bad = flags != 0 || length != 0 || stored != EndPayloadLen
	case typeMark:
		bad = flags != 0 || length != 0 || stored != 0
	default:
		if typ < 'a' || typ > 'z' || stored > bs {
			bad = true
			break
		}
		// An ancillary record this Observer does not know: skipped, as a
		// Reader skips it; it does not move the position.
		o.typ, o.stored, o.skipped, o.state = typ, stored, 0, obsPayload
		o.payload()
		return
	}
	switch {
	case bad || le.Uint16(b[2:]) != 0:
		o.stop(fmt.Errorf("frame: source offset %d: %w: record type %#02x, flags %#02x, stored %d, length %d", o.pos, ErrCorrupt, typ, flags, stored, length))
		return
	case off < o.pos || off > o.pos && !o.hdr.Delta():
		o.stop(fmt.Errorf("frame: source offset %d: %w: record at %d", o.pos, ErrOrder, off))
		return
	case off > maxInt64-length || o.hdr.SourceSize >= 0 && off+length > o.hdr.SourceSize ||
		typ == typeEnd && o.hdr.SourceSize >= 0 && off != o.hdr.SourceSize:
		o.stop(fmt.Errorf("frame: source offset %d: %w: [%d, %d)", o.pos, ErrRange, off, off+length))
		return
	}
	o.typ, o.stored, o.skipped, o.state = typ, stored, 0, obsPayload
	if typ == typeData {
		o.base, o.length = off, length
	}
	o.pos = off // a gap (delta) or a progress mark moves it on at once
	if typ == typeZero {
		o.pos = off + length
	}
	o.payload()
}

// payload moves pos on through a DATA payload and ends the record when all
// of its payload has passed.
func (o *Observer) payload() {
	if o.typ == typeData {
		// length and stored are at most 16 MiB: the product fits.
		o.pos = o.base + o.length*o.skipped/o.stored
	}
	if o.skipped < o.stored {
		return
	}
	o.state = obsRecord
	if o.typ == typeEnd {
		o.state = obsEnd
	}
}
