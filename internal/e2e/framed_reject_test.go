package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Each rejection of docs/FORMAT.md "What a reader must reject", at the
// tool level: a real stream from the built blkcat, broken by stream surgery
// (fields changed and the checksums that guard them recomputed, so the
// intended check fires and not a CRC), piped into the built blkwrite
// --framed. Each must exit 1 with the frame package's message naming the
// stream and source offsets, never print "verified", never touch the
// target beyond the stream's declared size, and stay within a fixed memory
// cap whatever the stream claims.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// The fields of a stream, per docs/FORMAT.md.
const (
	hdrLen    = 64
	recHdrLen = 32
	endLen    = 48
	hVersion  = 8
	hFlags    = 12
	hBlock    = 16
	hCodec    = 20
	hSize     = 24
	hID       = 40
	hCRC      = 60
	rType     = 0
	rFlags    = 1
	rReserved = 2
	rStored   = 4
	rOffset   = 8
	rLength   = 16
	rPayCRC   = 24
	rCRC      = 28
)

var le = binary.LittleEndian

// rawRec is one record as it sits in the stream: its 32-byte header and
// its stored_len payload bytes.
type rawRec struct {
	hdr     []byte
	payload []byte
}

func (r *rawRec) typ() byte         { return r.hdr[rType] }
func (r *rawRec) offset() int64     { return int64(le.Uint64(r.hdr[rOffset:])) }
func (r *rawRec) length() int64     { return int64(le.Uint64(r.hdr[rLength:])) }
func (r *rawRec) setOffset(v int64) { le.PutUint64(r.hdr[rOffset:], uint64(v)) }
func (r *rawRec) setLength(v int64) { le.PutUint64(r.hdr[rLength:], uint64(v)) }
func (r *rawRec) setStored(v int)   { le.PutUint32(r.hdr[rStored:], uint32(v)) }

// rawStream is a stream cut into its header and records, for surgery.
type rawStream struct {
	hdr  []byte
	recs []*rawRec
}

// parseStream splits b into header and records; b must be a valid stream.
func parseStream(tb testing.TB, b []byte) *rawStream {
	tb.Helper()
	if len(b) < hdrLen || le.Uint16(b[10:]) != hdrLen {
		tb.Fatalf("not a version 1 stream with a 64-byte header (%d bytes)", len(b))
	}
	s := &rawStream{hdr: bytes.Clone(b[:hdrLen])}
	for off := hdrLen; off < len(b); {
		if off+recHdrLen > len(b) {
			tb.Fatalf("stream cut in a record header at %d", off)
		}
		stored := int(le.Uint32(b[off+rStored:]))
		end := off + recHdrLen + stored
		if end > len(b) {
			tb.Fatalf("stream cut in a payload at %d", off)
		}
		s.recs = append(s.recs, &rawRec{hdr: bytes.Clone(b[off : off+recHdrLen]), payload: bytes.Clone(b[off+recHdrLen : end])})
		off = end
	}
	if n := len(s.recs); n == 0 || s.recs[n-1].typ() != 'E' {
		tb.Fatal("stream does not end with END")
	}
	return s
}

// clone returns a deep copy to break.
func (s *rawStream) clone() *rawStream {
	c := &rawStream{hdr: bytes.Clone(s.hdr)}
	for _, r := range s.recs {
		c.recs = append(c.recs, &rawRec{hdr: bytes.Clone(r.hdr), payload: bytes.Clone(r.payload)})
	}
	return c
}

// sealHeader recomputes the header CRC after a change.
func (s *rawStream) sealHeader() { le.PutUint32(s.hdr[hCRC:], crc32c(s.hdr[:hCRC])) }

// seal recomputes r's record_crc: CRC-32C of stream_id ‖ header[0, 28).
func (s *rawStream) seal(r *rawRec) {
	c := crc32.Update(crc32c(s.hdr[hID:hID+16]), castagnoli, r.hdr[:rCRC])
	le.PutUint32(r.hdr[rCRC:], c)
}

// sealEnd recomputes END's payload CRC and record CRC.
func (s *rawStream) sealEnd(r *rawRec) {
	le.PutUint32(r.hdr[rPayCRC:], crc32c(r.payload))
	s.seal(r)
}

func (s *rawStream) sourceSize() int64 { return int64(le.Uint64(s.hdr[hSize:])) }

// at returns the stream offset of record i's header.
func (s *rawStream) at(i int) int64 {
	off := int64(hdrLen)
	for _, r := range s.recs[:i] {
		off += recHdrLen + int64(len(r.payload))
	}
	return off
}

func (s *rawStream) bytes() []byte {
	b := bytes.Clone(s.hdr)
	for _, r := range s.recs {
		b = append(b, r.hdr...)
		b = append(b, r.payload...)
	}
	return b
}

// index returns the index of the first record of type typ (with the
// COMPRESSED flag as given, for DATA), failing if there is none.
func (s *rawStream) index(tb testing.TB, typ byte, compressed bool) int {
	tb.Helper()
	for i, r := range s.recs {
		if r.typ() == typ && (typ != 'D' || (r.hdr[rFlags]&1 != 0) == compressed) {
			return i
		}
	}
	tb.Fatalf("stream has no %q record (compressed %v)", typ, compressed)
	return -1
}

// rejectSource is the source of the streams under test, 4 MiB + 700
// bytes at blkcat's 1 MiB block size: a random block (stored raw), a 2 MiB
// zero run (one ZERO record), a text block (compressed) and a short text
// tail (compressed).
func rejectSource() []byte {
	text := bytes.Repeat([]byte("blkpipe moves blocks; "), 1<<20/22+1)
	b := randomMiB()
	b = append(b, make([]byte, 2<<20)...)
	b = append(b, text[:1<<20]...)
	return append(b, text[:700]...)
}

// randomMiB is 1 MiB of incompressible bytes.
func randomMiB() []byte {
	b := make([]byte, 1<<20)
	var x uint64 = 0x9E3779B97F4A7C15
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

// makeStream frames data with the built blkcat (args select the codec).
func makeStream(t *testing.T, data []byte, args ...string) []byte {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := run(t, nil, testutil.Tool(t, "blkcat"), append(append([]string{"-q"}, args...), src)...)
	if code != 0 {
		t.Fatalf("blkcat %v: exit %d: %s", args, code, stderr)
	}
	return []byte(out)
}

// memCap is the most memory blkwrite may use on any of these streams: the
// documented 64 MiB per side.
const memCap = 64 << 20

// rejected runs blkwrite --framed with stream on standard input, writing
// target (extra operands after it), and checks what every rejection must
// hold: exit 1 (a panic exits 2), the wanted first line (and second line,
// when want2 is not empty), no "verified", no more than memCap of memory.
// It returns stderr.
func rejected(t *testing.T, stream []byte, target, want1, want2 string, extra ...string) string {
	t.Helper()
	// Peak memory comes from GNU time, which forks blkwrite from its own
	// small process: the kernel's ru_maxrss of a child exec'd straight from
	// this (vfork-ing, possibly large) test process would include the test's
	// own high-water mark.
	testutil.NeedCmd(t, "/usr/bin/time")
	rss := filepath.Join(t.TempDir(), "maxrss")
	args := append([]string{"-o", rss, "-f", "%M", testutil.Tool(t, "blkwrite"), "--framed", target}, extra...)
	cmd := exec.Command("/usr/bin/time", args...)
	cmd.Stdin = bytes.NewReader(stream)
	_, stderr, code := runCmd(t, cmd)
	// A target larger than the source gets a note first; it is not the
	// rejection.
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "blkwrite: note: ") {
			lines = append(lines, l)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if lines[0] != want1 {
		t.Errorf("first line of stderr\n got %q\nwant %q", lines[0], want1)
	}
	if want2 != "" && (len(lines) < 2 || lines[1] != want2) {
		t.Errorf("second line of stderr\n got %q\nwant %q", lines[1:], want2)
	}
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("blkwrite panicked:\n%s", stderr)
	}
	if strings.Contains(stderr, "verified") {
		t.Errorf("stderr mentions verified:\n%s", stderr)
	}
	b, err := os.ReadFile(rss)
	if err != nil {
		t.Fatal(err)
	}
	// GNU time writes "Command exited with non-zero status 1" first.
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		t.Fatalf("GNU time wrote nothing to %s", rss)
	}
	kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		t.Fatalf("GNU time wrote %q: %v", b, err)
	}
	if kib<<10 > memCap {
		t.Errorf("blkwrite peaked at %d MiB of memory, cap %d MiB", kib>>10, memCap>>20)
	}
	return stderr
}

// patternFile writes n bytes of 0xEE to a new file and returns its path.
func patternFile(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xEE}, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// untouchedFrom fails unless path's bytes from off to the end are still
// the 0xEE pattern, and it is still size bytes long.
func untouchedFrom(t *testing.T, path string, off int64, size int) {
	t.Helper()
	got := mustRead(t, path)
	if len(got) != size {
		t.Errorf("%s is %d bytes, was %d", path, len(got), size)
		return
	}
	off = max(off, 0)
	if off > int64(len(got)) {
		return
	}
	if !bytes.Equal(got[off:], bytes.Repeat([]byte{0xEE}, len(got)-int(off))) {
		t.Errorf("%s was changed beyond offset %d, the stream's declared size", path, off)
	}
}

func at(s *rawStream, i int, src int64, detail string) string {
	return fmt.Sprintf("blkwrite: frame: at stream offset %d (source offset %d): %s", s.at(i), src, detail)
}

func incomplete(n int64, target string) string {
	return fmt.Sprintf("blkwrite: the copy is incomplete: %d bytes landed on '%s'; do not use the target", n, target)
}

// rejectCase is one broken stream: break changes a clone of the stream and
// returns the expected first line of stderr; header cases fail before the
// target is opened.
type rejectCase struct {
	name   string
	zstd   bool // break the zstd stream rather than the lz4 one
	header bool
	brk    func(s *rawStream) string
}

// versionHint follows the frame package's version error: over ssh, a
// stream of another version comes from another host's build.
const versionHint = ": blkcat on the sending side and this blkwrite are different blkpipe versions (see their --version); install the same version on both hosts"

func rejectCases(t *testing.T) []rejectCase {
	const sq = "blkwrite: 'standard input': frame: "
	return []rejectCase{
		// 1–4: the header.
		{name: "bad magic", header: true, brk: func(s *rawStream) string {
			s.hdr[1] = 'X'
			return "blkwrite: 'standard input' is not a framed stream (no blkpipe header); use --raw for raw data"
		}},
		{name: "version 2", header: true, brk: func(s *rawStream) string {
			le.PutUint16(s.hdr[hVersion:], 2)
			s.sealHeader()
			return sq + "unsupported format version 2 (this reader reads 1)" + versionHint
		}},
		{name: "version 0 with a bad checksum too", header: true, brk: func(s *rawStream) string {
			le.PutUint16(s.hdr[hVersion:], 0)
			return sq + "unsupported format version 0 (this reader reads 1)" + versionHint
		}},
		{name: "header checksum", header: true, brk: func(s *rawStream) string {
			s.hdr[hSize] ^= 1
			return fmt.Sprintf(sq+"header checksum mismatch: computed %08x, header says %08x", crc32c(s.hdr[:hCRC]), le.Uint32(s.hdr[hCRC:]))
		}},
		{name: "header length 63", header: true, brk: func(s *rawStream) string {
			le.PutUint16(s.hdr[10:], 63)
			s.sealHeader()
			return sq + "invalid header: header length 63 not in [64, 4096]"
		}},
		{name: "unknown critical flag", header: true, brk: func(s *rawStream) string {
			s.hdr[hFlags] |= 4
			s.sealHeader()
			return sq + "invalid header: unknown critical flags 0x4"
		}},
		{name: "block size beyond the cap", header: true, brk: func(s *rawStream) string {
			le.PutUint32(s.hdr[hBlock:], 32<<20)
			s.sealHeader()
			return sq + "invalid header: block size 33554432 not a multiple of 512 in [512, 16777216]"
		}},
		{name: "unknown codec", header: true, brk: func(s *rawStream) string {
			s.hdr[hCodec] = 9
			s.sealHeader()
			return sq + "invalid header: unknown codec(9)"
		}},

		// 5: a missing END (the other cuts are in TestFramedRejectCuts).
		{name: "missing END", brk: func(s *rawStream) string {
			n := len(s.recs) - 1
			s.recs = s.recs[:n]
			return at(s, n, s.sourceSize(), fmt.Sprintf("stream truncated: end of input before END record, %d records read", n))
		}},

		// 6: record CRC.
		{name: "record checksum", brk: func(s *rawStream) string {
			r := s.recs[1]
			r.hdr[rLength] ^= 1
			want := le.Uint32(r.hdr[rCRC:])
			s.seal(r)
			got := le.Uint32(r.hdr[rCRC:])
			le.PutUint32(r.hdr[rCRC:], want)
			return at(s, 1, s.recs[0].length(), fmt.Sprintf("checksum mismatch: record header computes %08x, says %08x (damaged, or from another stream)", got, want))
		}},

		// 7: unknown record types.
		{name: "unknown type X", brk: func(s *rawStream) string {
			i := s.index(t, 'Z', false)
			s.recs[i].hdr[rType] = 'X'
			s.seal(s.recs[i])
			return at(s, i, s.recs[i].offset(), "corrupt record: unknown record type 0x58")
		}},
		{name: "unknown type 0x00", brk: func(s *rawStream) string {
			s.recs[0].hdr[rType] = 0
			s.seal(s.recs[0])
			return at(s, 0, 0, "corrupt record: unknown record type 0x00")
		}},

		// 8: reserved bytes and flags.
		{name: "reserved bytes", brk: func(s *rawStream) string {
			r := s.recs[0]
			r.hdr[rReserved] = 1
			s.seal(r)
			return at(s, 0, 0, "corrupt record: record reserved bytes 0x0001")
		}},
		{name: "unknown DATA flag", brk: func(s *rawStream) string {
			r := s.recs[0]
			r.hdr[rFlags] |= 4
			s.seal(r)
			return at(s, 0, 0, "corrupt record: DATA flags 0x04")
		}},

		// 9: records larger than their cap, refused before the payload
		// is read or a buffer grows.
		{name: "DATA stored length beyond the block size", brk: func(s *rawStream) string {
			r := s.recs[0]
			r.setStored(math.MaxUint32)
			s.seal(r)
			return at(s, 0, 0, "record too large: DATA length 1048576 stored 4294967295, block size 1048576")
		}},
		{name: "DATA length beyond the block size", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			r.setLength(1 << 40)
			s.seal(r)
			return at(s, i, r.offset(), fmt.Sprintf("record too large: DATA length 1099511627776 stored %d, block size 1048576", len(r.payload)))
		}},
		{name: "compressed DATA stored beyond its length", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			r.setLength(int64(len(r.payload) - 1))
			s.seal(r)
			return at(s, i, r.offset(), fmt.Sprintf("record too large: compressed DATA stored %d > length %d", len(r.payload), len(r.payload)-1))
		}},
		{name: "ZERO with a payload", brk: func(s *rawStream) string {
			i := s.index(t, 'Z', false)
			r := s.recs[i]
			r.setStored(1 << 30)
			s.seal(r)
			return at(s, i, r.offset(), "record too large: ZERO with 1073741824 payload bytes")
		}},
		{name: "END payload beyond 48 bytes", brk: func(s *rawStream) string {
			i := len(s.recs) - 1
			s.recs[i].setStored(math.MaxUint32)
			s.seal(s.recs[i])
			return at(s, i, s.sourceSize(), "record too large: END payload 4294967295 bytes, want 48")
		}},

		// 10: lengths, order and range.
		{name: "ZERO beyond the source size", brk: func(s *rawStream) string {
			i := s.index(t, 'Z', false)
			r := s.recs[i]
			r.setLength(r.length() + 8<<20)
			s.seal(r)
			return at(s, i, r.offset(), fmt.Sprintf("record outside source: ZERO [%d, %d) beyond source size %d", r.offset(), r.offset()+r.length(), s.sourceSize()))
		}},
		{name: "header source size shorter than the records", brk: func(s *rawStream) string {
			le.PutUint64(s.hdr[hSize:], 2<<20) // ZERO covers [1 MiB, 3 MiB)
			s.sealHeader()
			i := s.index(t, 'Z', false)
			r := s.recs[i]
			return at(s, i, r.offset(), fmt.Sprintf("record outside source: ZERO [%d, %d) beyond source size %d", r.offset(), r.offset()+r.length(), 2<<20))
		}},
		{name: "offset plus length overflows", brk: func(s *rawStream) string {
			i := s.index(t, 'Z', false)
			r := s.recs[i]
			r.setLength(math.MaxInt64)
			s.seal(r)
			return at(s, i, r.offset(), fmt.Sprintf("record outside source: ZERO offset %d + length %d overflows", r.offset(), int64(math.MaxInt64)))
		}},
		{name: "overlapping record", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			pos := r.offset()
			r.setOffset(pos - 512)
			s.seal(r)
			return at(s, i, pos-512, fmt.Sprintf("records out of order: DATA at %d overlaps or precedes source offset %d already covered", pos-512, pos))
		}},
		{name: "backwards record", brk: func(s *rawStream) string {
			i := len(s.recs) - 2 // the tail
			r := s.recs[i]
			pos := r.offset()
			r.setOffset(0)
			s.seal(r)
			return at(s, i, 0, fmt.Sprintf("records out of order: DATA at 0 overlaps or precedes source offset %d already covered", pos))
		}},
		{name: "gap without the delta flag", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			pos := r.offset()
			r.setOffset(pos + 512)
			s.seal(r)
			return at(s, i, pos+512, fmt.Sprintf("records out of order: DATA at %d leaves a gap after %d in a stream without the delta flag", pos+512, pos))
		}},
		{name: "zero length", brk: func(s *rawStream) string {
			i := s.index(t, 'Z', false)
			r := s.recs[i]
			r.setLength(0)
			s.seal(r)
			return at(s, i, r.offset(), "corrupt record: ZERO length 0")
		}},

		// 11: decoded length and payload checksum.
		{name: "lz4 payload decodes short", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			data := rejectSource()[r.offset() : r.offset()+r.length()-1]
			reencode(t, s, r, lz4Block(t, data), data)
			return at(s, i, r.offset(), fmt.Sprintf("corrupt record: decoded %d bytes, record says %d", len(data), r.length()))
		}},
		{name: "lz4 payload decodes long", brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			data := append(rejectSource()[r.offset():r.offset()+r.length()], "more"...)
			reencode(t, s, r, lz4Block(t, data), data)
			return at(s, i, r.offset(), "corrupt record: lz4: lz4: invalid source or destination buffer too short")
		}},
		{name: "zstd payload decodes short", zstd: true, brk: func(s *rawStream) string {
			i := s.index(t, 'D', true)
			r := s.recs[i]
			data := rejectSource()[r.offset() : r.offset()+r.length()-1]
			reencode(t, s, r, zstdFrame(t, data), data)
			return at(s, i, r.offset(), fmt.Sprintf("corrupt record: decoded %d bytes, record says %d", len(data), r.length()))
		}},
		{name: "zstd payload decodes long", zstd: true, brk: func(s *rawStream) string {
			i := len(s.recs) - 2 // the 700-byte tail, so the longer frame still fits a block
			r := s.recs[i]
			data := append(rejectSource()[r.offset():r.offset()+r.length()], "more"...)
			reencode(t, s, r, zstdFrame(t, data), data)
			return at(s, i, r.offset(), fmt.Sprintf("corrupt record: decoded %d bytes, record says %d", len(data), r.length()))
		}},
		{name: "payload checksum", brk: func(s *rawStream) string {
			r := s.recs[0]
			r.payload[12345] ^= 0x20
			return at(s, 0, 0, fmt.Sprintf("checksum mismatch: DATA computes %08x, record says %08x", crc32c(r.payload), le.Uint32(r.hdr[rPayCRC:])))
		}},

		// 12–14: END.
		{name: "END record count", brk: func(s *rawStream) string {
			i := len(s.recs) - 1
			r := s.recs[i]
			le.PutUint64(r.payload[0:], 7)
			s.sealEnd(r)
			return at(s, i, s.sourceSize(), fmt.Sprintf("corrupt record: END says 7 records covering %d bytes, stream has %d covering %d", s.sourceSize(), i, s.sourceSize()))
		}},
		{name: "END digest", brk: func(s *rawStream) string {
			i := len(s.recs) - 1
			r := s.recs[i]
			good := bytes.Clone(r.payload[16:])
			r.payload[16] ^= 1
			s.sealEnd(r)
			return at(s, i, s.sourceSize(), fmt.Sprintf("source digest mismatch: source hashes to %x, END says %x (blake3)", good, r.payload[16:]))
		}},
		{name: "END not at the source size", brk: func(s *rawStream) string {
			i := len(s.recs) - 1
			r := s.recs[i]
			r.setOffset(s.sourceSize() + 1)
			s.seal(r)
			return at(s, i, s.sourceSize()+1, fmt.Sprintf("records out of order: END at %d leaves a gap after %d in a stream without the delta flag", s.sourceSize()+1, s.sourceSize()))
		}},
		{name: "trailing garbage", brk: func(s *rawStream) string {
			i := len(s.recs) - 1
			s.recs[i].payload = append(s.recs[i].payload, "garbage"...)
			// The END record parses, then a byte follows it.
			return fmt.Sprintf("blkwrite: frame: at stream offset %d (source offset %d): data after END record: bytes follow the END record",
				s.at(i)+recHdrLen+endLen, s.sourceSize())
		}},
	}
}

// reencode replaces r's payload with payload, the encoding of data, and
// sets payload_crc to data's CRC, so only the decoded length is wrong.
func reencode(tb testing.TB, s *rawStream, r *rawRec, payload, data []byte) {
	tb.Helper()
	if int64(len(payload)) > r.length() {
		tb.Fatalf("re-encoded payload %d bytes > length %d", len(payload), r.length())
	}
	r.payload = payload
	r.setStored(len(payload))
	le.PutUint32(r.hdr[rPayCRC:], crc32c(data))
	s.seal(r)
}

func lz4Block(tb testing.TB, data []byte) []byte {
	out := make([]byte, lz4.CompressBlockBound(len(data)))
	var c lz4.Compressor
	n, err := c.CompressBlock(data, out)
	if err != nil || n == 0 {
		tb.Fatalf("lz4: %d %v", n, err)
	}
	return out[:n]
}

func zstdFrame(tb testing.TB, data []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// TestFramedReject pipes each broken stream into blkwrite --framed, onto a
// file that held other data and is longer than the source: with
// conv=notrunc nothing past the stream's declared size may change; without
// it, a header error must leave the file as it was (not even truncated).
func TestFramedReject(t *testing.T) {
	data := rejectSource()
	streams := map[bool]*rawStream{
		false: parseStream(t, makeStream(t, data, "-z", "lz4")),
		true:  parseStream(t, makeStream(t, data, "-z", "zstd")),
	}
	// The stream has the shape the cases assume.
	var types string
	for _, r := range streams[false].recs {
		types += string(r.typ())
	}
	if types != "DZDDE" {
		t.Fatalf("lz4 stream has records %q, want DZDDE", types)
	}
	size := len(data) + 1<<20
	for _, tc := range rejectCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			s := streams[tc.zstd].clone()
			want := tc.brk(s)
			stream := s.bytes()
			declared := s.sourceSize()

			target := patternFile(t, size)
			rejected(t, stream, target, want, "")
			if tc.header {
				untouchedFrom(t, target, 0, size)
			}

			target = patternFile(t, size)
			rejected(t, stream, target, want, "", "conv=notrunc")
			untouchedFrom(t, target, declared, size)
		})
	}
}

// TestFramedRejectRaw: without --framed, input without the magic is raw
// data and is copied as it is; with the magic but a bad header it is not.
func TestFramedRejectRaw(t *testing.T) {
	s := parseStream(t, makeStream(t, rejectSource(), "--frame"))
	s.hdr[0] = 0x88
	target := filepath.Join(t.TempDir(), "raw")
	if _, stderr, code := run(t, s.bytes(), testutil.Tool(t, "blkwrite"), "-q", target); code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !bytes.Equal(mustRead(t, target), s.bytes()) {
		t.Errorf("raw data not copied as it was")
	}
	s.hdr[0] = 0x89
	le.PutUint16(s.hdr[hVersion:], 2)
	s.sealHeader()
	_, stderr, code := run(t, s.bytes(), testutil.Tool(t, "blkwrite"), target)
	if want := "blkwrite: 'standard input': frame: unsupported format version 2 (this reader reads 1)" + versionHint + "\n"; code != 1 || stderr != want {
		t.Errorf("version 2 without --framed: exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
}

// TestFramedRejectCuts cuts a small stream at every record boundary, in
// the middle of every record header and payload, and in the header.
func TestFramedRejectCuts(t *testing.T) {
	full := makeStream(t, rejectSource(), "-z", "lz4")
	s := parseStream(t, full)
	type cut struct {
		n           int64
		want, want2 string
	}
	target := filepath.Join(t.TempDir(), "target")
	cutMagic := fmt.Sprintf("blkwrite: 'standard input' ends inside a framed stream's header (did the sender fail?): '%s' was left as it was; --raw copies it as data", target)
	cuts := []cut{
		{0, fmt.Sprintf("blkwrite: 'standard input' is empty (did the sender fail?): '%s' was left as it was; of=%s copies an empty input as dd does", target, target), ""},
		{7, cutMagic, ""},
		{8, "blkwrite: 'standard input': frame: at stream offset 8: stream truncated: end of input in header", ""},
		{40, "blkwrite: 'standard input': frame: at stream offset 8: stream truncated: end of input in header", ""},
		{63, "blkwrite: 'standard input': frame: at stream offset 8: stream truncated: end of input in header", ""},
	}
	var pos int64 // source bytes the records before the cut carry
	for i, r := range s.recs {
		start := s.at(i)
		landed := incomplete(pos, target)
		if i == 0 {
			landed = "" // nothing was applied: the target was not touched
		}
		cuts = append(cuts,
			cut{start, at(s, i, pos, fmt.Sprintf("stream truncated: end of input before END record, %d records read", i)), landed},
			cut{start + 1, at(s, i, pos, "stream truncated: end of input 1 bytes into a record header (unexpected EOF)"), landed},
			cut{start + recHdrLen/2, at(s, i, pos, fmt.Sprintf("stream truncated: end of input %d bytes into a record header (unexpected EOF)", recHdrLen/2)), landed},
			cut{start + recHdrLen - 1, at(s, i, pos, fmt.Sprintf("stream truncated: end of input %d bytes into a record header (unexpected EOF)", recHdrLen-1)), landed})
		name := map[byte]string{'D': "DATA", 'E': "END"}[r.typ()]
		for _, k := range []int{0, 1, len(r.payload) / 2, len(r.payload) - 1} {
			if len(r.payload) == 0 {
				break
			}
			cuts = append(cuts, cut{start + recHdrLen + int64(k),
				fmt.Sprintf("blkwrite: frame: at stream offset %d (source offset %d): stream truncated: end of input %d bytes into a %d-byte %s payload",
					start+recHdrLen+int64(k), r.offset(), k, len(r.payload), name), landed})
		}
		pos += r.length()
	}
	if n := cuts[len(cuts)-1].n; n != int64(len(full))-1 {
		t.Fatalf("last cut at %d, stream is %d bytes", n, len(full))
	}
	for _, c := range cuts {
		stderr := rejected(t, full[:c.n], target, c.want, c.want2)
		if c.want2 == "" && strings.Contains(stderr, "the copy is incomplete") {
			t.Errorf("cut at %d, before any record was applied: %q", c.n, stderr)
		}
	}
}

// TestFramedRejectDevice: on a loop device larger than the source, broken
// streams never change the device beyond the declared source size, even
// where a ZERO run claims to reach past it.
func TestFramedRejectDevice(t *testing.T) {
	testutil.NeedRoot(t)
	data := rejectSource()
	s := parseStream(t, makeStream(t, data, "-z", "lz4"))
	const devSize = 8 << 20
	img := testutil.SparseFile(t, devSize)
	if err := os.WriteFile(img, bytes.Repeat([]byte{0xEE}, devSize), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := testutil.LoopDevice(t, img)
	cases := map[string]bool{
		"ZERO beyond the source size":                 true,
		"header source size shorter than the records": true,
		"overlapping record":                          true,
		"offset plus length overflows":                true,
		"END digest":                                  true,
	}
	n := 0
	for _, tc := range rejectCases(t) {
		if !cases[tc.name] {
			continue
		}
		n++
		t.Run(tc.name, func(t *testing.T) {
			b := s.clone()
			want := tc.brk(b)
			rejected(t, b.bytes(), dev, want, "")
			untouchedFrom(t, dev, b.sourceSize(), devSize)
		})
	}
	if n != len(cases) {
		t.Fatalf("ran %d of %d device cases", n, len(cases))
	}
	t.Run("cut in the ZERO run's record", func(t *testing.T) {
		i := s.index(t, 'Z', false)
		cut := s.bytes()[:s.at(i)+recHdrLen/2]
		rejected(t, cut, dev, at(s, i, s.recs[i].offset(), fmt.Sprintf("stream truncated: end of input %d bytes into a record header (unexpected EOF)", recHdrLen/2)),
			incomplete(s.recs[i].offset(), dev))
		untouchedFrom(t, dev, s.sourceSize(), devSize)
	})
}
