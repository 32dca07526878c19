package frame_test

// An independent reader of docs/FORMAT.md's framed stream, written from
// the document and sharing no code with package frame, decodes every
// golden stream in testdata/: if the reference implementation and the
// document drift apart (a field moved, a CRC over other bytes), the golden
// file that frame still reads fails here.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"lukechampine.com/blake3"
)

var specCRC = crc32.MakeTable(0x82F63B78) // CRC-32C, reflected

// specStream is what the independent reader found in a stream.
type specStream struct {
	blockSize  uint32
	codec      byte
	sourceSize int64
	streamID   [16]byte
	types      string // one letter per record, in order
	offsets    []int  // stream offset of each record
	source     []byte // rebuilt from DATA and ZERO records
	digest     [32]byte
}

// specDecode checks b against every rule of docs/FORMAT.md that a full
// (not delta, not resumed) stream with codec none must follow, and
// returns what it holds. With base, b must instead be a changed-block
// delta (DELTA and BASE) of that base copy; the source is base with the
// records applied.
func specDecode(b []byte, base []byte) (*specStream, error) {
	le := binary.LittleEndian
	if len(b) < 64 || !bytes.Equal(b[:8], []byte("\x89BLKP\r\n\x1a")) {
		return nil, fmt.Errorf("no magic")
	}
	if v := le.Uint16(b[8:]); v != 1 {
		return nil, fmt.Errorf("version %d", v)
	}
	hl := int(le.Uint16(b[10:]))
	if hl < 64 || hl > 4096 || hl > len(b) {
		return nil, fmt.Errorf("header_len %d", hl)
	}
	if got, want := crc32.Checksum(b[:hl-4], specCRC), le.Uint32(b[hl-4:]); got != want {
		return nil, fmt.Errorf("header_crc %08x, computed %08x", want, got)
	}
	s := &specStream{blockSize: le.Uint32(b[16:]), codec: b[20], sourceSize: int64(le.Uint64(b[24:]))}
	copy(s.streamID[:], b[40:56])
	flags, start := le.Uint32(b[12:]), int64(le.Uint64(b[32:]))
	delta := base != nil
	switch {
	case delta && (flags&0xffff != 3 || hl < 112 || int64(le.Uint64(b[60:])) != int64(len(base)) || le.Uint64(b[100:]) != 0):
		return nil, fmt.Errorf("flags %#x header_len %d base_size %d: not a changed-block delta of the %d-byte base", flags, hl, int64(le.Uint64(b[60:])), len(base))
	case delta && b[23] == 2 && !bytes.Equal(b[68:100], func() []byte { d := blake3.Sum256(base); return d[:] }()):
		return nil, fmt.Errorf("base_digest %x is not the BLAKE3-256 of the base", b[68:100])
	case !delta && flags&0xffff != 0:
		return nil, fmt.Errorf("critical flags %#x (this checker reads full streams only)", flags)
	case s.codec != 0:
		return nil, fmt.Errorf("codec %d (this checker reads codec none only)", s.codec)
	case b[22] != 1 || (b[23] != 1 && b[23] != 2):
		return nil, fmt.Errorf("checksum_alg %d, digest_alg %d", b[22], b[23])
	case s.blockSize < 512 || s.blockSize > 16<<20 || s.blockSize%512 != 0:
		return nil, fmt.Errorf("block_size %d", s.blockSize)
	case s.sourceSize < -1 || start != 0:
		return nil, fmt.Errorf("source_size %d, start_offset %d", s.sourceSize, start)
	}
	pos, records, covered := int64(0), int64(0), int64(0)
	if delta {
		s.source = append(append([]byte(nil), base...), make([]byte, max(0, s.sourceSize-int64(len(base))))...)[:s.sourceSize]
	}
	for off := hl; ; {
		if off+32 > len(b) {
			return nil, fmt.Errorf("stream offset %d: truncated record header", off)
		}
		h := b[off : off+32]
		typ, rflags, stored := h[0], h[1], int(le.Uint32(h[4:]))
		offset, length, payCRC := int64(le.Uint64(h[8:])), int64(le.Uint64(h[16:])), le.Uint32(h[24:])
		if got := crc32.Update(crc32.Checksum(s.streamID[:], specCRC), specCRC, h[:28]); got != le.Uint32(h[28:]) {
			return nil, fmt.Errorf("stream offset %d: record_crc", off)
		}
		if rflags != 0 || h[2] != 0 || h[3] != 0 {
			return nil, fmt.Errorf("stream offset %d: rflags %#x or reserved set", off, rflags)
		}
		if off+32+stored > len(b) {
			return nil, fmt.Errorf("stream offset %d: truncated payload", off)
		}
		payload := b[off+32 : off+32+stored]
		s.types += string(rune(typ))
		s.offsets = append(s.offsets, off)
		off += 32 + stored
		if typ >= 'a' && typ <= 'z' {
			if stored > int(s.blockSize) {
				return nil, fmt.Errorf("ancillary record of %d bytes", stored)
			}
			continue
		}
		if offset != pos && (!delta || offset < pos) {
			return nil, fmt.Errorf("record at source offset %d, want %d", offset, pos)
		}
		switch typ {
		case 'D':
			if length < 1 || length > int64(s.blockSize) || int64(stored) != length || crc32.Checksum(payload, specCRC) != payCRC {
				return nil, fmt.Errorf("DATA at %d: length %d stored %d or payload_crc", offset, length, stored)
			}
			if delta {
				copy(s.source[offset:], payload)
			} else {
				s.source = append(s.source, payload...)
			}
		case 'Z':
			if length < 1 || stored != 0 || payCRC != 0 {
				return nil, fmt.Errorf("ZERO at %d: length %d stored %d", offset, length, stored)
			}
			if delta {
				clear(s.source[offset : offset+length])
			} else {
				s.source = append(s.source, make([]byte, length)...)
			}
		case 'E':
			if length != 0 || stored != 48 || crc32.Checksum(payload, specCRC) != payCRC {
				return nil, fmt.Errorf("END: length %d stored %d or payload_crc", length, stored)
			}
			if s.sourceSize >= 0 && offset != s.sourceSize {
				return nil, fmt.Errorf("END at %d, source_size %d", offset, s.sourceSize)
			}
			if n, c := int64(le.Uint64(payload)), int64(le.Uint64(payload[8:])); n != records || c != covered {
				return nil, fmt.Errorf("END counts %d records %d bytes, stream has %d, %d", n, c, records, covered)
			}
			copy(s.digest[:], payload[16:])
			// digest_alg 1 is SHA-256, 2 BLAKE3-256 (the library's
			// own one-shot hash, not the tree this package computes).
			if b[23] == 1 && s.digest != sha256.Sum256(s.source) {
				return nil, fmt.Errorf("END digest %x is not the SHA-256 of the source", s.digest)
			}
			if b[23] == 2 && s.digest != blake3.Sum256(s.source) {
				return nil, fmt.Errorf("END digest %x is not the BLAKE3-256 of the source", s.digest)
			}
			if off != len(b) {
				return nil, fmt.Errorf("%d bytes after END", len(b)-off)
			}
			return s, nil
		default:
			return nil, fmt.Errorf("record type %q", typ)
		}
		if s.sourceSize >= 0 && offset+length > s.sourceSize {
			return nil, fmt.Errorf("record beyond source_size")
		}
		pos = offset + length
		records++
		covered += length
	}
}

// TestSpecCRC is FORMAT.md's check value for its CRC-32C.
func TestSpecCRC(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), specCRC); got != 0xE3069283 {
		t.Fatalf("CRC-32C(123456789) = %08x, FORMAT.md says e3069283", got)
	}
}

// TestSpecGolden decodes every golden stream with the independent reader,
// and testdata/small.blkp also against the Example of docs/FORMAT.md.
func TestSpecGolden(t *testing.T) {
	testutil.EachFile(t, filepath.Join("testdata", "*.blkp"), func(t *testing.T, p string, b []byte) {
		var base []byte
		if filepath.Base(p) == "small-base.blkp" {
			// TestGoldenBase's base: the source with BLKPIPE in capitals.
			base = append(append([]byte("BLKPIPE\n"), make([]byte, 1024)...), "end\n"...)
		}
		s, err := specDecode(b, base)
		if err != nil {
			t.Fatalf("%s breaks docs/FORMAT.md: %v", p, err)
		}
		if filepath.Base(p) != "small.blkp" {
			return
		}
		src := append(append([]byte("blkpipe\n"), make([]byte, 1024)...), "end\n"...)
		id, _ := hex.DecodeString("b10c919e0102030405060708090a0b0c")
		switch {
		case len(b) != 764:
			t.Errorf("%d bytes, the Example says 764", len(b))
		case !bytes.Equal(s.source, src):
			t.Errorf("source %q, the Example's is blkpipe\\n, 1024 zero bytes, end\\n", s.source)
		case s.blockSize != 512 || s.codec != 0 || s.sourceSize != 1036 || !bytes.Equal(s.streamID[:], id):
			t.Errorf("block size %d codec %d source size %d stream id %x", s.blockSize, s.codec, s.sourceSize, s.streamID)
		case !bytes.Equal(b[0x3c:0x40], []byte{0x98, 0x40, 0x25, 0xf1}):
			t.Errorf("header_crc % x, the Example says 98 40 25 f1", b[0x3c:0x40])
		case s.types != "DZDE" || fmt.Sprint(s.offsets) != fmt.Sprint([]int{0x40, 0x260, 0x280, 0x2ac}):
			t.Errorf("records %q at %#x, the Example has DATA, ZERO, DATA, END at 0x40, 0x260, 0x280, 0x2ac", s.types, s.offsets)
		case !bytes.HasPrefix([]byte(hex.EncodeToString(s.digest[:])), []byte("e7e604d7")) || hex.EncodeToString(s.digest[:])[62:] != "a4":
			t.Errorf("END digest %x, the Example says e7e604d7…a4", s.digest)
		}
	})
}
