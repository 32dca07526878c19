package frame

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Hand-made streams: a header and records built field by field, so each
// rejection test breaks exactly one rule.

const tbs = 4096 // block size of the crafted streams

func testHeader() Header {
	return Header{Version: Version, BlockSize: tbs, Codec: CodecLZ4, DigestAlg: DigestSHA256, SourceSize: 3 * tbs, StreamID: testID}
}

// headerWith returns a marshalled header after edit changes its bytes,
// with the header CRC recomputed.
func headerWith(h Header, edit func(b []byte)) []byte {
	b := h.marshal()
	if edit != nil {
		edit(b)
		binary.LittleEndian.PutUint32(b[60:], crc(b[:60]))
	}
	return b
}

func rec(rh recHeader, payload []byte) []byte {
	b := make([]byte, RecordHeaderLen)
	rh.put(b, &testID)
	return append(b, payload...)
}

func dataRec(off int64, data []byte) []byte {
	return rec(recHeader{typ: typeData, storedLen: uint32(len(data)), offset: off, length: int64(len(data)), payloadCRC: crc(data)}, data)
}

func zeroRec(off, n int64) []byte { return rec(recHeader{typ: typeZero, offset: off, length: n}, nil) }

func markRec(off int64) []byte { return rec(recHeader{typ: typeMark, offset: off}, nil) }

func endRec(off, records, covered int64, digest [32]byte) []byte {
	p := make([]byte, EndPayloadLen)
	binary.LittleEndian.PutUint64(p[0:], uint64(records))
	binary.LittleEndian.PutUint64(p[8:], uint64(covered))
	copy(p[16:], digest[:])
	return rec(recHeader{typ: typeEnd, storedLen: EndPayloadLen, offset: off, payloadCRC: crc(p)}, p)
}

func lz4Rec(off int64, data []byte, length int64) []byte {
	out := make([]byte, lz4.CompressBlockBound(len(data)))
	n, err := lz4.CompressBlock(data, out, nil)
	if err != nil || n == 0 {
		panic(fmt.Sprint("lz4 test block: ", n, err))
	}
	return rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(n), offset: off, length: length, payloadCRC: crc(data)}, out[:n])
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The source of the crafted streams: random, zero, text blocks.
var (
	blockA    = randomBytes(tbs, 11)
	blockC    = bytes.Repeat([]byte("0123456789abcdef"), tbs/16)
	source    = join(blockA, make([]byte, tbs), blockC)
	srcDigest = sha256.Sum256(source)
)

func validStream() []byte {
	return join(testHeader().marshal(), dataRec(0, blockA), zeroRec(tbs, tbs), lz4Rec(2*tbs, blockC, tbs), endRec(3*tbs, 3, 3*tbs, srcDigest))
}

func TestCraftedValid(t *testing.T) {
	delta := testHeader()
	delta.Flags |= FlagDelta
	cases := []struct {
		name     string
		stream   []byte
		verified bool
	}{
		{"valid", validStream(), true},
		{"longer header from a later revision", join(
			func() []byte {
				b := testHeader().marshal()[:56]
				binary.LittleEndian.PutUint16(b[10:], 72)
				b = append(b, make([]byte, 12)...) // reserved + 8 new bytes
				b = binary.LittleEndian.AppendUint32(b, crc(b))
				return b
			}(),
			validStream()[HeaderLen:]), true},
		{"unknown optional flag", join(headerWith(testHeader(), func(b []byte) { b[14] = 1 }), validStream()[HeaderLen:]), true},
		{"ancillary record skipped", join(testHeader().marshal(), dataRec(0, blockA),
			rec(recHeader{typ: 'q', storedLen: 5, offset: 77}, []byte("hello")),
			validStream()[HeaderLen+RecordHeaderLen+tbs:]), true},
		{"delta gap without base", join(delta.marshal(), dataRec(0, blockA), lz4Rec(2*tbs, blockC, tbs), endRec(3*tbs, 2, 2*tbs, srcDigest)), false},
		{"progress marks in a delta", join(delta.marshal(), markRec(0), dataRec(0, blockA), markRec(2*tbs), markRec(2*tbs), lz4Rec(2*tbs, blockC, tbs), markRec(3*tbs), endRec(3*tbs, 2, 2*tbs, srcDigest)), false},
		{"progress marks in a full stream", join(testHeader().marshal(), markRec(0), dataRec(0, blockA), markRec(tbs), validStream()[HeaderLen+RecordHeaderLen+tbs:]), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decode(tc.stream)
			if err != nil {
				t.Fatal(err)
			}
			if d.end.Verified != tc.verified || d.end.Digest != srcDigest {
				t.Fatalf("END verified %v digest %x", d.end.Verified, d.end.Digest)
			}
			if tc.verified && !bytes.Equal(d.data, source) {
				t.Fatal("data differ")
			}
		})
	}
}

func TestReject(t *testing.T) {
	h := testHeader()
	body := validStream()[HeaderLen:]
	hdr := h.marshal()
	delta := h
	delta.Flags |= FlagDelta
	none := h
	none.Codec = CodecNone
	unknownSize := h
	unknownSize.SourceSize = -1
	small := h
	small.SourceSize = 10000
	end3 := endRec(3*tbs, 3, 3*tbs, srcDigest)
	zenc, _ := zstd.NewWriter(nil)
	zstdBlock := zenc.EncodeAll(blockC[:3000], nil)
	zstdFull := zenc.EncodeAll(blockC, nil)
	zstdHuge := zstdRLE('x', tbs, 32<<20)
	zh := h
	zh.Codec = CodecZstd

	cases := []struct {
		name   string
		stream []byte
		want   error
		msg    string // substring of the error, if set
	}{
		{"empty input", nil, ErrBadMagic, "frame: not a framed stream (bad magic): empty input"},
		{"raw dd data", bytes.Repeat([]byte{0xeb, 0x63, 0x90}, 200), ErrBadMagic, "starts with eb6390eb6390eb63"},
		{"short input", []byte("\x89BL"), ErrBadMagic, "input is 3 bytes"},
		{"version 2", headerWith(h, func(b []byte) { b[8] = 2 }), ErrVersion, "frame: unsupported format version 2 (this reader reads 1)"},
		{"header checksum", join(func() []byte { b := h.marshal(); b[17] ^= 1; return b }(), body), ErrHeaderChecksum, ""},
		{"header checksum of stream id", join(func() []byte { b := h.marshal(); b[45] ^= 0x80; return b }(), body), ErrHeaderChecksum, ""},
		{"header length 63", headerWith(h, func(b []byte) { b[10] = 63 }), ErrHeader, "header length 63"},
		{"header length 5000", headerWith(h, func(b []byte) { binary.LittleEndian.PutUint16(b[10:], 5000) }), ErrHeader, "header length 5000"},
		{"unknown critical flag", join(headerWith(h, func(b []byte) { b[12] = 4 }), body), ErrHeader, "unknown critical flags 0x4"},
		{"block size not multiple of 512", headerWith(h, func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 1000) }), ErrHeader, "block size 1000"},
		{"block size over cap", headerWith(h, func(b []byte) { binary.LittleEndian.PutUint32(b[16:], MaxBlockSize+512) }), ErrHeader, "block size 16777728"},
		{"unknown codec", headerWith(h, func(b []byte) { b[20] = 3 }), ErrHeader, "unknown codec(3)"},
		{"unknown checksum", headerWith(h, func(b []byte) { b[22] = 2 }), ErrHeader, "unknown checksum algorithm 2"},
		{"unknown digest", headerWith(h, func(b []byte) { b[23] = 3 }), ErrHeader, "unknown digest algorithm 3"},
		{"unknown digest", headerWith(h, func(b []byte) { b[23] = 0 }), ErrHeader, "unknown digest algorithm 0"},
		{"source size -2", headerWith(h, func(b []byte) { binary.LittleEndian.PutUint64(b[24:], ^uint64(1)) }), ErrHeader, "source size -2"},
		{"start past size", headerWith(h, func(b []byte) { b[32] = 0xff; b[33] = 0xff }), ErrHeader, "start offset 65535 outside source of size 12288"},
		{"truncated header", hdr[:40], ErrTruncated, "frame: at stream offset 8: stream truncated: end of input in header"},
		{"missing END", validStream()[:len(validStream())-len(end3)], ErrTruncated,
			fmt.Sprintf("frame: at stream offset %d (source offset 12288): stream truncated: end of input before END record, 3 records read", len(validStream())-len(end3))},
		{"no records", hdr, ErrTruncated, "at stream offset 64 (source offset 0): stream truncated: end of input before END record, 0 records read"},
		{"trailing garbage", join(validStream(), []byte("\n")), ErrTrailingData, "data after END record: bytes follow the END record"},
		{"trailing second stream", join(validStream(), validStream()), ErrTrailingData, ""},
		{"unknown record type", join(hdr, rec(recHeader{typ: 'Q', offset: 0, length: 1}, nil)), ErrCorrupt, "unknown record type 0x51"},
		{"record type 0", join(hdr, rec(recHeader{}, nil)), ErrCorrupt, "unknown record type 0x00"},
		{"record header checksum", join(hdr, func() []byte { b := dataRec(0, blockA); b[9] ^= 1; return b }()), ErrChecksum,
			"frame: at stream offset 64 (source offset 0): checksum mismatch: record header computes"},
		{"record from another stream", join(hdr, func() []byte {
			b := make([]byte, RecordHeaderLen)
			other := [16]byte{1}
			(&recHeader{typ: typeZero, length: tbs}).put(b, &other)
			return b
		}()), ErrChecksum, "from another stream"},
		{"raw payload damaged", join(hdr, func() []byte { b := dataRec(0, blockA); b[100] ^= 4; return b }(), body[RecordHeaderLen+tbs:]), ErrChecksum,
			"frame: at stream offset 64 (source offset 0): checksum mismatch: DATA computes"},
		{"compressed payload damaged", join(hdr, dataRec(0, blockA), zeroRec(tbs, tbs), func() []byte {
			b := lz4Rec(2*tbs, blockC, tbs)
			b[len(b)-1] ^= 0x55
			return b
		}(), end3), ErrChecksum, "(source offset 8192): checksum mismatch: DATA computes"},
		{"offset beyond size", join(small.marshal(), dataRec(0, blockA), zeroRec(tbs, tbs), dataRec(2*tbs, blockA)), ErrRange,
			"(source offset 8192): record outside source: DATA [8192, 12288) beyond source size 10000"},
		{"zero run beyond size", join(hdr, zeroRec(0, 1<<40)), ErrRange, "ZERO [0, 1099511627776) beyond source size 12288"},
		{"length overflows", join(unknownSize.marshal(), zeroRec(0, 5), zeroRec(5, maxInt64)), ErrRange, "overflows"},
		{"END before size", join(delta.marshal(), dataRec(0, blockA), endRec(2*tbs, 1, tbs, srcDigest)), ErrRange, "END at 8192, source size 12288"},
		{"END past size", join(delta.marshal(), dataRec(0, blockA), endRec(4*tbs, 1, tbs, srcDigest)), ErrRange, ""},
		{"overlapping records", join(hdr, dataRec(0, blockA), dataRec(tbs/2, blockA)), ErrOrder, "DATA at 2048 overlaps or precedes source offset 4096 already covered"},
		{"backwards records", join(delta.marshal(), dataRec(2*tbs, blockC), dataRec(0, blockA)), ErrOrder, "precedes"},
		{"duplicate record", join(hdr, dataRec(0, blockA), dataRec(0, blockA)), ErrOrder, ""},
		{"gap without delta", join(hdr, dataRec(0, blockA), dataRec(2*tbs, blockC)), ErrOrder, "leaves a gap after 4096 in a stream without the delta flag"},
		{"first record after start", join(hdr, dataRec(tbs, blockA)), ErrOrder, "gap"},
		{"END leaves a gap", join(hdr, dataRec(0, blockA), endRec(3*tbs, 1, tbs, srcDigest)), ErrOrder, "END at 12288 leaves a gap after 4096"},
		{"lz4 decodes shorter than declared", join(hdr, lz4Rec(0, blockC[:3000], tbs)), ErrCorrupt, "decoded 3000 bytes, record says 4096"},
		{"lz4 decodes longer than declared", join(hdr, lz4Rec(0, blockC, 3000)), ErrCorrupt, "lz4"},
		{"zstd decodes shorter than declared", join(zh.marshal(), rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(len(zstdBlock)), length: tbs, payloadCRC: crc(blockC[:3000])}, zstdBlock)),
			ErrCorrupt, "decoded 3000 bytes, record says 4096"},
		{"zstd decodes longer than declared", join(zh.marshal(), rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(len(zstdFull)), length: 3000, payloadCRC: crc(blockC[:3000])}, zstdFull)),
			ErrCorrupt, "decoded 4096 bytes, record says 3000"},
		{"zstd window over 16 MiB", join(zh.marshal(), rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(len(zstdHuge)), length: tbs, payloadCRC: crc(bytes.Repeat([]byte{'x'}, tbs))}, zstdHuge)),
			ErrCorrupt, "window size exceeded"},
		{"zstd garbage", join(zh.marshal(), rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: 10, length: tbs}, []byte("not zstd!!"))), ErrCorrupt, "zstd"},
		{"DATA longer than block", join(hdr, rec(recHeader{typ: typeData, storedLen: 2 * tbs, length: 2 * tbs}, nil)), ErrTooLarge, "DATA length 8192 stored 8192, block size 4096"},
		{"stored length 4 GiB", join(hdr, rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: 0xffffffff, length: tbs}, nil)), ErrTooLarge, "stored 4294967295"},
		{"compressed larger than length", join(hdr, rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: 100, length: 50}, nil)), ErrTooLarge, "compressed DATA stored 100 > length 50"},
		{"ZERO with payload", join(hdr, rec(recHeader{typ: typeZero, storedLen: 1, length: tbs}, []byte{0})), ErrTooLarge, ""},
		{"END payload too long", join(hdr, rec(recHeader{typ: typeEnd, storedLen: 1 << 30, offset: 3 * tbs}, nil)), ErrTooLarge, "END payload 1073741824 bytes"},
		{"progress mark backwards", join(delta.marshal(), lz4Rec(2*tbs, blockC, tbs), markRec(tbs)), ErrOrder, "progress mark at 4096 overlaps or precedes source offset 12288 already covered"},
		{"record before a progress mark", join(delta.marshal(), markRec(2*tbs), dataRec(0, blockA)), ErrOrder, "DATA at 0 overlaps or precedes source offset 8192 already covered"},
		{"progress mark leaves a gap", join(hdr, dataRec(0, blockA), markRec(2*tbs)), ErrOrder, "progress mark at 8192 leaves a gap after 4096 in a stream without the delta flag"},
		{"progress mark beyond size", join(delta.marshal(), markRec(4*tbs)), ErrRange, "progress mark [16384, 16384) beyond source size 12288"},
		{"progress mark with payload", join(delta.marshal(), rec(recHeader{typ: typeMark, storedLen: 1, offset: tbs}, []byte{0})), ErrTooLarge, "progress mark with 1 payload bytes"},
		{"progress mark with length", join(delta.marshal(), rec(recHeader{typ: typeMark, offset: tbs, length: tbs}, nil)), ErrCorrupt, "progress mark flags 0x00 checksum 00000000 length 4096"},
		{"ancillary over cap", join(hdr, rec(recHeader{typ: 'x', storedLen: tbs + 1}, nil)), ErrTooLarge, ""},
		{"END payload too short", join(hdr, body[:len(body)-len(end3)], rec(recHeader{typ: typeEnd, storedLen: 8, offset: 3 * tbs}, make([]byte, 8))), ErrCorrupt, ""},
		{"raw stored != length", join(hdr, rec(recHeader{typ: typeData, storedLen: 10, length: 20}, make([]byte, 10))), ErrCorrupt, "raw DATA stored 10 != length 20"},
		{"DATA length 0", join(hdr, rec(recHeader{typ: typeData}, nil)), ErrCorrupt, "DATA length 0"},
		{"ZERO length 0", join(hdr, zeroRec(0, 0)), ErrCorrupt, "ZERO length 0"},
		{"ZERO negative", join(hdr, zeroRec(0, -4096)), ErrCorrupt, "ZERO length -4096"},
		{"compressed without codec", join(none.marshal(), lz4Rec(0, blockC, tbs)), ErrCorrupt, "compressed DATA in a stream without codec"},
		{"unknown record flag", join(hdr, rec(recHeader{typ: typeData, flags: 2, storedLen: 1, length: 1, payloadCRC: crc([]byte{1})}, []byte{1})), ErrCorrupt, "DATA flags 0x02"},
		{"reserved bytes", join(hdr, rec(recHeader{typ: typeZero, reserved: 1, length: tbs}, nil)), ErrCorrupt, "reserved"},
		{"END record count", join(hdr, body[:len(body)-len(end3)], endRec(3*tbs, 2, 3*tbs, srcDigest)), ErrCorrupt,
			fmt.Sprintf("frame: at stream offset %d (source offset 12288): corrupt record: END says 2 records covering 12288 bytes, stream has 3 covering 12288", len(validStream())-len(end3))},
		{"END covered", join(hdr, body[:len(body)-len(end3)], endRec(3*tbs, 3, 3*tbs-1, srcDigest)), ErrCorrupt, ""},
		{"END payload checksum", join(hdr, body[:len(body)-len(end3)], func() []byte { b := bytes.Clone(end3); b[40] ^= 1; return b }()), ErrChecksum,
			fmt.Sprintf("frame: at stream offset %d (source offset 12288): checksum mismatch: END payload computes", len(validStream())-len(end3))},
		{"digest mismatch", join(hdr, body[:len(body)-len(end3)], endRec(3*tbs, 3, 3*tbs, sha256.Sum256(nil))), ErrDigest,
			fmt.Sprintf("frame: at stream offset %d (source offset 12288): source digest mismatch: source hashes to %x, END says e3b0c442", len(validStream())-len(end3), srcDigest)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 3} {
				_, err := decode(tc.stream, WithDecoders(n))
				if !errors.Is(err, tc.want) {
					t.Fatalf("decoders %d: got %v, want %v", n, err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %q does not contain %q", err, tc.msg)
				}
			}
		})
	}
}

// TestRejectLimit feeds streams past WithLimit's size: a 1 PiB ZERO run
// of unknown source size is refused at its header, before it is hashed,
// and so is a record past the limit of a stream declaring a larger source.
func TestRejectLimit(t *testing.T) {
	h := testHeader()
	unknownSize := h
	unknownSize.SourceSize = -1
	cases := []struct {
		name   string
		stream []byte
		limit  int64
		msg    string
	}{
		{"zero run of unknown size", join(unknownSize.marshal(), zeroRec(0, 1<<50)), 2 * tbs, "ZERO [0, 1125899906842624) beyond the limit of 8192 bytes"},
		{"second record", join(unknownSize.marshal(), zeroRec(0, tbs), zeroRec(tbs, tbs)), tbs, "ZERO [4096, 8192) beyond the limit of 4096 bytes"},
		{"declared size", join(h.marshal(), zeroRec(0, tbs), zeroRec(tbs, 2*tbs)), 2 * tbs, "ZERO [4096, 12288) beyond the limit of 8192 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.stream, WithLimit(tc.limit), WithDecoders(2))
			if !errors.Is(err, ErrRange) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want ErrRange containing %q", err, tc.msg)
			}
		})
	}
	if _, err := NewReader(bytes.NewReader(validStream()), WithLimit(-1)); err == nil {
		t.Fatal("WithLimit(-1) accepted")
	}
}

// TestTruncatedEverywhere cuts a real stream at every byte: every prefix
// is rejected, as bad magic below 8 bytes and as truncated after, and a
// cut at a record boundary names that stream offset.
func TestTruncatedEverywhere(t *testing.T) {
	for _, c := range codecs[:3] {
		t.Run(c.name, func(t *testing.T) {
			data := mixed(40000)
			data = append(data, make([]byte, 3*tbs)...)
			data = append(data, 1)
			stream := encode(t, data, WithCodec(c.codec, c.level), WithBlockSize(tbs), WithSourceSize(int64(len(data))))
			boundaries := map[int]bool{HeaderLen: true}
			for off := HeaderLen; off < len(stream); {
				boundaries[off] = true
				off += RecordHeaderLen + int(binary.LittleEndian.Uint32(stream[off+4:]))
			}
			if _, err := decode(stream); err != nil {
				t.Fatal(err)
			}
			for n := 0; n < len(stream); n++ {
				_, err := decode(stream[:n], WithDecoders(2))
				switch {
				case n < len(Magic):
					if !errors.Is(err, ErrBadMagic) {
						t.Fatalf("cut at %d: %v, want ErrBadMagic", n, err)
					}
				case !errors.Is(err, ErrTruncated):
					t.Fatalf("cut at %d: %v, want ErrTruncated", n, err)
				case boundaries[n] && !strings.Contains(err.Error(), fmt.Sprintf("at stream offset %d (source offset", n)):
					t.Fatalf("cut at record boundary %d: %v", n, err)
				}
			}
		})
	}
}

// failReader returns its bytes, then err.
type failReader struct {
	b   []byte
	err error
}

func (f *failReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestReadError: a failing input is reported with its own error, not as
// a truncated or malformed stream.
func TestReadError(t *testing.T) {
	eio := errors.New("input/output error")
	s := validStream()
	for _, n := range []int{0, 5, 40, HeaderLen, HeaderLen + 10, HeaderLen + 100, len(s)} {
		r, err := NewReader(&failReader{b: s[:n], err: eio})
		if err == nil {
			for err == nil {
				_, err = r.Next()
			}
		}
		if !errors.Is(err, eio) || errors.Is(err, ErrTruncated) {
			t.Errorf("input failing after %d bytes: %v", n, err)
		}
	}
}

// zstdRLE is a zstd frame as another encoder may write it from a pipe
// (RFC 8878): no content size, a window descriptor saying window (a power
// of two, at least 1 KiB), and one RLE block of n bytes c.
func zstdRLE(c byte, n, window int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0, byte(bits.TrailingZeros(uint(window))-10) << 3}
	bh := uint32(1 | 1<<1 | n<<3) // last block, RLE, size n
	return append(b, byte(bh), byte(bh>>8), byte(bh>>16), c)
}

// TestZstdForeignFrames: DATA payloads made by another zstd encoder decode
// whatever the block size, as docs/FORMAT.md promises: frames without a
// content size and windows larger than the block (up to 16 MiB), and the
// smallest block size, below zstd's 1 KiB minimum window.
func TestZstdForeignFrames(t *testing.T) {
	for _, tc := range []struct {
		bs, window int
	}{{512, 1 << 10}, {512, 8 << 20}, {tbs, 512 << 10}, {tbs, 16 << 20}} {
		t.Run(fmt.Sprintf("bs%d-window%d", tc.bs, tc.window), func(t *testing.T) {
			h := testHeader()
			h.Codec, h.BlockSize, h.SourceSize = CodecZstd, uint32(tc.bs), int64(2*tc.bs)
			a, b := bytes.Repeat([]byte{'a'}, tc.bs), bytes.Repeat([]byte{'b'}, tc.bs)
			za, zb := zstdRLE('a', tc.bs, tc.window), zstdRLE('b', tc.bs, tc.window)
			src := join(a, b)
			stream := join(h.marshal(),
				rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(len(za)), length: int64(tc.bs), payloadCRC: crc(a)}, za),
				rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: uint32(len(zb)), offset: int64(tc.bs), length: int64(tc.bs), payloadCRC: crc(b)}, zb),
				endRec(int64(2*tc.bs), 2, int64(2*tc.bs), sha256.Sum256(src)))
			d, err := decode(stream)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.data, src) || !d.end.Verified {
				t.Fatalf("decoded %d bytes, verified %v", len(d.data), d.end.Verified)
			}
		})
	}
	// blkcat's own encoder at the smallest block size.
	data := mixed(100000)
	stream := encode(t, data, WithCodec(CodecZstd, 1), WithBlockSize(512), WithSourceSize(int64(len(data))))
	d, err := decode(stream)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.data, data) {
		t.Fatal("512-byte zstd blocks: data differ")
	}
}
