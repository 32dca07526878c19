package frame

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"sync"
	"sync/atomic"
	"time"
)

var testID = [16]byte{0xb1, 0x0c, 0x91, 0x9e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// encode frames data with opts (and a fixed stream id) and returns the stream.
func encode(tb testing.TB, data []byte, opts ...WriterOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, append([]WriterOption{WithStreamID(testID)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	// Feed in odd chunk sizes to exercise block cutting.
	for p, i := data, 0; len(p) > 0; i++ {
		n := min(len(p), 1+(i*7919)%300000)
		if _, err := w.Write(p[:n]); err != nil {
			tb.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decoded is what decode makes of a stream.
type decodedStream struct {
	hdr  Header
	data []byte   // source rebuilt from DATA and ZERO records
	recs []Record // records without Data
	end  Record
}

// decode reads a whole stream, rebuilding the source, and returns the
// first error.
func decode(stream []byte, opts ...ReaderOption) (decodedStream, error) {
	var d decodedStream
	r, err := NewReader(bytes.NewReader(stream), opts...)
	if err != nil {
		return d, err
	}
	defer r.Close()
	d.hdr = r.Header()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, err
		}
		if end := rec.Offset + rec.Length; int64(len(d.data)) < end {
			d.data = append(d.data, make([]byte, end-int64(len(d.data)))...)
		}
		if rec.Type == Data {
			if int64(len(rec.Data)) != rec.Length {
				return d, fmt.Errorf("DATA at %d: %d bytes, length %d", rec.Offset, len(rec.Data), rec.Length)
			}
			copy(d.data[rec.Offset:], rec.Data)
		}
		rec.Data = nil
		d.recs = append(d.recs, rec)
		if rec.Type == End {
			d.end = rec
		}
	}
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// mixed is compressible text, random and zero regions in odd sizes.
func mixed(n int) []byte {
	b := make([]byte, 0, n)
	r := rand.New(rand.NewSource(42))
	for len(b) < n {
		k := min(n-len(b), 1+r.Intn(200000))
		switch r.Intn(3) {
		case 0:
			for i := 0; i < k; i++ {
				b = append(b, "the quick brown fox jumps over the lazy dog\n"[i%44])
			}
		case 1:
			b = append(b, randomBytes(k, int64(len(b)))...)
		case 2:
			b = append(b, make([]byte, k)...)
		}
	}
	return b
}

func mostlyZero(n int) []byte {
	b := make([]byte, n)
	for i := 100; i < n; i += 3 << 20 {
		b[i] = 1
	}
	return b
}

// algs are the digest algorithms a Writer can use, the default first.
var algs = []DigestAlg{DigestBLAKE3, DigestSHA256}

// sourceDigest returns what END carries for source b under alg.
func sourceDigest(alg DigestAlg, b []byte) [32]byte {
	if alg == DigestSHA256 {
		return sha256.Sum256(b)
	}
	return digest.Sum256(b)
}

var codecs = []struct {
	name  string
	codec Codec
	level int
}{
	{"none", CodecNone, 0},
	{"lz4", CodecLZ4, 0},
	{"zstd", CodecZstd, 3},
	{"zstd1", CodecZstd, 1},
}

func TestRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
		bs   int
	}{
		{"empty", nil, 4096},
		{"one byte", []byte{7}, 4096},
		{"one zero byte", []byte{0}, 4096},
		{"random not block multiple", randomBytes(3<<20+123, 1), 1 << 20},
		{"random small blocks", randomBytes(300000, 2), 4096},
		{"mostly zero", mostlyZero(9<<20 + 5), 1 << 20},
		{"all zero", make([]byte, 4<<20), 1 << 20},
		{"mixed", mixed(5<<20 + 511), 64 << 10},
		{"mixed big blocks", mixed(5 << 20), MaxBlockSize},
	}
	for i, in := range inputs {
		for j, c := range codecs {
			// Both digests, alternating over inputs and codecs.
			alg := algs[(i+j)%len(algs)]
			t.Run(in.name+"/"+c.name+"/"+alg.String(), func(t *testing.T) {
				stream := encode(t, in.data, WithCodec(c.codec, c.level), WithBlockSize(in.bs), WithSourceSize(int64(len(in.data))), WithDigest(alg))
				d, err := decode(stream)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(d.data, in.data) {
					t.Fatalf("decoded %d bytes differ from the %d-byte source", len(d.data), len(in.data))
				}
				want := sourceDigest(alg, in.data)
				if d.end.Digest != want || !d.end.Verified || d.hdr.DigestAlg != alg {
					t.Fatalf("END digest %x verified %v, want %x", d.end.Digest, d.end.Verified, want)
				}
				if d.end.Offset != int64(len(in.data)) || d.end.Covered != int64(len(in.data)) || d.end.Records != int64(len(d.recs)-1) {
					t.Fatalf("END %+v after %d records", d.end, len(d.recs)-1)
				}
				if d.hdr.Codec != c.codec || d.hdr.SourceSize != int64(len(in.data)) || d.hdr.StreamID != testID {
					t.Fatalf("header %+v", d.hdr)
				}
			})
		}
	}
}

// TestZeroRuns checks that zero blocks become ZERO records, merged when
// adjacent, and that a stream of unknown size works.
func TestZeroRuns(t *testing.T) {
	const bs = 4096
	data := make([]byte, 10*bs+100)
	data[0] = 1        // block 0 DATA
	data[4*bs+5] = 1   // blocks 1-3 ZERO, block 4 DATA
	data[10*bs+99] = 1 // blocks 5-9 ZERO, tail DATA
	stream := encode(t, data, WithBlockSize(bs), WithCodec(CodecLZ4, 0))
	d, err := decode(stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range d.recs {
		got = append(got, fmt.Sprintf("%v %d+%d", r.Type, r.Offset, r.Length))
	}
	want := fmt.Sprint([]string{"DATA 0+4096", "ZERO 4096+12288", "DATA 16384+4096", "ZERO 20480+20480", "DATA 40960+100", "END 41060+0"})
	if fmt.Sprint(got) != want {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
	if d.hdr.SourceSize != -1 || !bytes.Equal(d.data, data) || !d.end.Verified {
		t.Fatalf("size %d, data equal %v, verified %v", d.hdr.SourceSize, bytes.Equal(d.data, data), d.end.Verified)
	}
	// A stream of zeros costs header + one ZERO + END.
	z := encode(t, make([]byte, 64<<20))
	if len(z) != HeaderLen+2*RecordHeaderLen+EndPayloadLen {
		t.Fatalf("64 MiB of zeros framed in %d bytes", len(z))
	}
}

// TestConcurrencyIdentical: the stream's bytes do not depend on the number
// of compression goroutines, nor the records on the number of decoders.
func TestConcurrencyIdentical(t *testing.T) {
	data := mixed(6<<20 + 3)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			one := encode(t, data, WithCodec(c.codec, c.level), WithBlockSize(256<<10), WithConcurrency(1))
			many := encode(t, data, WithCodec(c.codec, c.level), WithBlockSize(256<<10), WithConcurrency(7))
			if !bytes.Equal(one, many) {
				t.Fatalf("concurrency 1 and 7 give different streams (%d and %d bytes)", len(one), len(many))
			}
			d1, err1 := decode(one, WithDecoders(1))
			d7, err7 := decode(one, WithDecoders(7))
			if err1 != nil || err7 != nil {
				t.Fatal(err1, err7)
			}
			if !bytes.Equal(d1.data, data) || !bytes.Equal(d7.data, data) || fmt.Sprint(d1.recs) != fmt.Sprint(d7.recs) {
				t.Fatal("decoders 1 and 7 disagree")
			}
		})
	}
}

// TestExt4Image frames a real filesystem image made by mkfs.ext4 -d.
func TestExt4Image(t *testing.T) {
	testutil.NeedCmd(t, "mkfs.ext4", "sha256sum", "b3sum")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string][]byte{
		"random.bin":      randomBytes(3<<20+17, 7),
		"text.txt":        bytes.Repeat([]byte("blkpipe frames block devices\n"), 40000),
		"sub/sparse.bin":  append(make([]byte, 2<<20), 1),
		"sub/small":       []byte("hello\n"),
		"sub/deeper/zero": make([]byte, 100000),
	}
	for name, b := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "ext4.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "24M")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range codecs {
		alg := algs[i%len(algs)]
		t.Run(c.name+"/"+alg.String(), func(t *testing.T) {
			stream := encode(t, data, WithCodec(c.codec, c.level), WithSourceSize(int64(len(data))), WithDigest(alg))
			d, err := decode(stream)
			if err != nil {
				t.Fatal(err)
			}
			if d.end.Digest != sourceDigest(alg, data) || !d.end.Verified || !bytes.Equal(d.data, data) {
				t.Fatal("ext4 image did not survive the round trip")
			}
			tool := map[DigestAlg]string{DigestSHA256: "sha256sum", DigestBLAKE3: "b3sum"}[alg]
			if sum := strings.Fields(testutil.Run(t, tool, img))[0]; sum != hex.EncodeToString(d.end.Digest[:]) {
				t.Fatalf("END digest %x, %s prints %s", d.end.Digest, tool, sum)
			}
			t.Logf("%s: %d-byte image framed in %d bytes", c.name, len(data), len(stream))
		})
	}
}

// TestResume: a stream starting at an offset, its prefix hashed with
// HashOnly, verified against a base holding the prefix.
func TestResume(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg.String(), func(t *testing.T) { testResume(t, alg) })
	}
}

func testResume(t *testing.T, alg DigestAlg) {
	data := mixed(3<<20 + 1000)
	const start = 1<<20 + 4096 // not a multiple of the block size
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WithCodec(CodecZstd, 1), WithBlockSize(64<<10), WithStartOffset(start), WithSourceSize(int64(len(data))), WithDigest(alg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.HashOnly(data[:start]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[start:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != sourceDigest(alg, data) {
		t.Fatal("Writer.Digest is not the whole source's")
	}
	stream := buf.Bytes()

	d, err := decode(stream, WithBase(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if d.hdr.StartOffset != start || d.recs[0].Offset != start || !d.end.Verified {
		t.Fatalf("start %d, first record at %d, verified %v", d.hdr.StartOffset, d.recs[0].Offset, d.end.Verified)
	}
	// The second record starts at a block boundary.
	if d.recs[1].Offset != 1<<20+64<<10 {
		t.Fatalf("second record at %d", d.recs[1].Offset)
	}
	if !bytes.Equal(d.data[start:], data[start:]) {
		t.Fatal("resumed data differ")
	}
	// Without a base the digest is passed on unverified.
	d, err = decode(stream)
	if err != nil || d.end.Verified || d.end.Digest != sourceDigest(alg, data) {
		t.Fatalf("no base: err %v verified %v", err, d.end.Verified)
	}
	// A base whose prefix differs fails the digest.
	bad := bytes.Clone(data)
	bad[10]++
	if _, err := decode(stream, WithBase(bytes.NewReader(bad))); !errors.Is(err, ErrDigest) {
		t.Fatalf("bad base: %v, want ErrDigest", err)
	}
}

func TestResumeMisuse(t *testing.T) {
	w, err := NewWriter(io.Discard, WithStartOffset(100))
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write([]byte{1})
	if err == nil || err.Error() != "frame: stream starts at source offset 100 but only 0 bytes were passed to HashOnly" {
		t.Fatalf("Write without HashOnly: %v", err)
	}
	if err2 := w.Close(); err2 != err {
		t.Fatalf("Close after error: %v, want the first error", err2)
	}
	w, _ = NewWriter(io.Discard, WithStartOffset(10))
	if _, err := w.HashOnly(make([]byte, 11)); err == nil {
		t.Fatal("HashOnly past the start offset succeeded")
	}
	w.Close()
}

// TestDelta: a filtered stream carries only changed blocks; the reader
// verifies the whole-source digest by reading the rest from its base.
func TestDelta(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg.String(), func(t *testing.T) { testDelta(t, alg) })
	}
}

func testDelta(t *testing.T, alg DigestAlg) {
	const bs = 64 << 10
	old := mixed(2<<20 + 300)
	cur := bytes.Clone(old)
	for _, off := range []int{5, 3*bs + 9, 20*bs + 1, len(cur) - 1} {
		cur[off] ^= 0xff
	}
	copy(cur[7*bs:8*bs], make([]byte, bs)) // a block that became zero
	changed := func(off int64, block []byte) bool {
		return !bytes.Equal(block, old[off:off+int64(len(block))])
	}
	stream := encode(t, cur, WithBlockSize(bs), WithCodec(CodecLZ4, 0), WithFilter(changed), WithSourceSize(int64(len(cur))), WithDigest(alg))
	target := bytes.Clone(old)
	r, err := NewReader(bytes.NewReader(stream), WithBase(bytes.NewReader(target)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Header().Delta() {
		t.Fatal("delta flag not set")
	}
	var offs []int64
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Type {
		case Data:
			copy(target[rec.Offset:], rec.Data)
		case Zero:
			clear(target[rec.Offset : rec.Offset+rec.Length])
		case End:
			if !rec.Verified || rec.Digest != sourceDigest(alg, cur) {
				t.Fatal("delta END not verified")
			}
		}
		offs = append(offs, rec.Offset)
	}
	if want := fmt.Sprint([]int64{0, 3 * bs, 7 * bs, 20 * bs, 32 * bs, int64(len(cur))}); fmt.Sprint(offs) != want {
		t.Fatalf("records at %v, want %v", offs, want)
	}
	if !bytes.Equal(target, cur) {
		t.Fatal("target differs after applying the delta")
	}
	// Against a target that is not the old image, the digest fails.
	other := bytes.Clone(old)
	other[10*bs]++
	if _, err := decode(stream, WithBase(bytes.NewReader(other))); !errors.Is(err, ErrDigest) {
		t.Fatalf("wrong base: %v, want ErrDigest", err)
	}
}

func TestWriterSourceSize(t *testing.T) {
	w, _ := NewWriter(io.Discard, WithSourceSize(100))
	w.Write(make([]byte, 99))
	if err := w.Close(); !errors.Is(err, ErrSourceSize) {
		t.Fatalf("short source: %v", err)
	}
	w, _ = NewWriter(io.Discard, WithSourceSize(100))
	if _, err := w.Write(make([]byte, 101)); !errors.Is(err, ErrSourceSize) {
		t.Fatalf("long source: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrSourceSize) {
		t.Fatalf("Close after long source: %v", err)
	}
	// A writer that fails writes no END: the stream reads as truncated.
	var buf bytes.Buffer
	w, _ = NewWriter(&buf, WithSourceSize(8192), WithBlockSize(4096))
	w.Write(randomBytes(5000, 3))
	w.Close()
	if _, err := decode(buf.Bytes()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("stream of a short source: %v, want ErrTruncated", err)
	}
}

// limitWriter fails every write once n bytes have been written.
type limitWriter struct {
	n   int
	buf bytes.Buffer
}

var errLimit = errors.New("limit reached")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.n {
		k := l.n - l.buf.Len()
		l.buf.Write(p[:k])
		return k, errLimit
	}
	return l.buf.Write(p)
}

func TestWriterStickyError(t *testing.T) {
	lw := &limitWriter{n: 200 << 10}
	w, err := NewWriter(lw, WithBlockSize(64<<10), WithConcurrency(3))
	if err != nil {
		t.Fatal(err)
	}
	// More than the Writer holds in flight (segments of 1 MiB).
	data := randomBytes(8<<20, 9)
	var first error
	for i := 0; i < len(data); i += 10000 {
		if _, err := w.Write(data[i:min(i+10000, len(data))]); err != nil {
			first = err
			break
		}
	}
	if !errors.Is(first, errLimit) {
		t.Fatalf("first error %v", first)
	}
	n := lw.buf.Len()
	if _, err := w.Write([]byte{1}); err != first {
		t.Fatalf("Write after error: %v", err)
	}
	if err := w.Close(); err != first {
		t.Fatalf("Close after error: %v", err)
	}
	if lw.buf.Len() != n || n > lw.n {
		t.Fatalf("%d bytes written after the first error", lw.buf.Len()-n)
	}
}

func TestWriterOptions(t *testing.T) {
	bad := []struct {
		name string
		opt  WriterOption
	}{
		{"block size 0", WithBlockSize(0)},
		{"block size not 512 multiple", WithBlockSize(1000)},
		{"block size over cap", WithBlockSize(MaxBlockSize + 512)},
		{"zstd level 23", WithCodec(CodecZstd, 23)},
		{"zstd level -1", WithCodec(CodecZstd, -1)},
		{"unknown codec", WithCodec(Codec(9), 0)},
		{"concurrency 0", WithConcurrency(0)},
		{"negative size", WithSourceSize(-1)},
		{"negative start", WithStartOffset(-1)},
		{"nil filter", WithFilter(nil)},
		{"digest 0", WithDigest(0)},
		{"unknown digest", WithDigest(3)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewWriter(io.Discard, tc.opt); !errors.Is(err, ErrHeader) {
				t.Fatalf("got %v, want ErrHeader", err)
			}
		})
	}
	if _, err := NewWriter(io.Discard, WithSourceSize(10), WithStartOffset(11)); !errors.Is(err, ErrHeader) {
		t.Fatalf("start past size: %v", err)
	}
	if _, err := NewReader(bytes.NewReader(nil), WithDecoders(0)); err == nil {
		t.Fatal("WithDecoders(0) accepted")
	}
}

func TestParseCodec(t *testing.T) {
	tests := []struct {
		in    string
		codec Codec
		level int
		err   string
	}{
		{"none", CodecNone, 0, ""},
		{"lz4", CodecLZ4, 0, ""},
		{"zstd", CodecZstd, 1, ""},
		{"zstd:3", CodecZstd, 3, ""},
		{"zstd:1", CodecZstd, 1, ""},
		{"zstd:22", CodecZstd, 22, ""},
		{"zstd:0", 0, 0, `codec "zstd:0": zstd level must be 1 to 22`},
		{"zstd:x", 0, 0, `codec "zstd:x": zstd level must be 1 to 22`},
		{"lz4:9", 0, 0, `codec "lz4:9": lz4 takes no level`},
		{"gzip", 0, 0, `codec "gzip": want none, lz4, zstd or zstd:LEVEL`},
	}
	for _, tc := range tests {
		c, l, err := ParseCodec(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseCodec(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c != tc.codec || l != tc.level {
			t.Errorf("ParseCodec(%q) = %v, %d, %v", tc.in, c, l, err)
		}
	}
}

func TestParseDigest(t *testing.T) {
	tests := []struct {
		in  string
		alg DigestAlg
		err string
	}{
		{"blake3", DigestBLAKE3, ""},
		{"sha256", DigestSHA256, ""},
		{"SHA256", 0, `digest "SHA256": want sha256 or blake3`},
		{"md5", 0, `digest "md5": want sha256 or blake3`},
		{"", 0, `digest "": want sha256 or blake3`},
	}
	for _, tc := range tests {
		a, err := ParseDigest(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseDigest(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || a != tc.alg || a.String() != tc.in {
			t.Errorf("ParseDigest(%q) = %v, %v", tc.in, a, err)
		}
	}
	if DefaultDigest != DigestBLAKE3 || DigestAlg(9).String() != "digest(9)" {
		t.Errorf("default %v, unknown %v", DefaultDigest, DigestAlg(9))
	}
}

// TestRawFallback: blocks that do not compress are stored raw, so a
// compressed stream of random data is barely larger than the data.
func TestRawFallback(t *testing.T) {
	data := randomBytes(1<<20, 5)
	for _, c := range codecs[1:] {
		stream := encode(t, data, WithCodec(c.codec, c.level), WithBlockSize(64<<10))
		for off := HeaderLen; off < len(stream); {
			typ, flags := stream[off], stream[off+1]
			if typ == typeData && flags != 0 {
				t.Fatalf("%s: DATA at stream offset %d is compressed", c.name, off)
			}
			off += RecordHeaderLen + int(binary.LittleEndian.Uint32(stream[off+4:]))
		}
		if want := HeaderLen + 16*RecordHeaderLen + len(data) + RecordHeaderLen + EndPayloadLen; len(stream) != want {
			t.Fatalf("%s: %d-byte stream, want %d", c.name, len(stream), want)
		}
	}
}

func TestUseAfterClose(t *testing.T) {
	w, _ := NewWriter(io.Discard)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	r, err := NewReader(bytes.NewReader(validStream()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  bool
	}{
		{"framed", validStream(), true},
		{"magic only", []byte(Magic), true},
		{"raw", bytes.Repeat([]byte{0}, 4096), false},
		{"short", []byte(Magic[:7]), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		br := bufio.NewReader(bytes.NewReader(tc.input))
		got, err := Detect(br)
		if err != nil || got != tc.want {
			t.Errorf("%s: Detect = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, tc.input) {
			t.Errorf("%s: Detect consumed input", tc.name)
		}
	}
	// NewReader takes the same bufio.Reader.
	br := bufio.NewReader(bytes.NewReader(validStream()))
	if ok, _ := Detect(br); !ok {
		t.Fatal("not detected")
	}
	r, err := NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// TestLongZeroRun: a zero run is cut into ZERO records of at most
// maxZeroRun (1 GiB; 1 MiB here), so the receiver hears of progress.
func TestLongZeroRun(t *testing.T) {
	defer func(n int64) { maxZeroRun = n }(maxZeroRun)
	maxZeroRun = 1 << 20
	const size = 5 << 19
	stream := encode(t, make([]byte, size), WithSourceSize(size), WithBlockSize(256<<10))
	d, err := decode(stream)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(d.recs)
	want := fmt.Sprint([]Record{{Type: Zero, Length: 1 << 20}, {Type: Zero, Offset: 1 << 20, Length: 1 << 20}, {Type: Zero, Offset: 2 << 20, Length: 1 << 19},
		{Type: End, Offset: size, Records: 3, Covered: size, Digest: digest.Sum256(make([]byte, size)), Verified: true}})
	if got != want {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
}

// maxReaderAt records the end of the furthest read from it.
type maxReaderAt struct {
	r   io.ReaderAt
	max atomic.Int64
}

func (m *maxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.r.ReadAt(p, off)
	for end := off + int64(n); ; {
		cur := m.max.Load()
		if end <= cur || m.max.CompareAndSwap(cur, end) {
			break
		}
	}
	return n, err
}

// TestDeltaProgressMarks: a delta stream that leaves out long runs
// carries a progress mark every markInterval bytes, and the reader hashes
// its base up to each mark as soon as it arrives, before the next record.
func TestDeltaProgressMarks(t *testing.T) {
	defer func(v int64) { markInterval = v }(markInterval)
	markInterval = 8 * tbs
	old := mixed(64 * tbs)
	cur := bytes.Clone(old)
	cur[1*tbs+7]++
	cur[40*tbs]++
	changed := func(off int64, block []byte) bool {
		return !bytes.Equal(block, old[off:off+int64(len(block))])
	}
	stream := encode(t, cur, WithBlockSize(tbs), WithFilter(changed), WithSourceSize(int64(len(cur))))

	var marks []int64
	var afterMark34 int // stream offset just after the mark at 34 blocks
	for off := HeaderLen; off < len(stream); {
		if stream[off] == typeMark {
			at := int64(binary.LittleEndian.Uint64(stream[off+8:]))
			marks = append(marks, at/tbs)
			if at == 34*tbs {
				afterMark34 = off + RecordHeaderLen
			}
		}
		off += RecordHeaderLen + int(binary.LittleEndian.Uint32(stream[off+4:]))
	}
	if got, want := fmt.Sprint(marks), "[10 18 26 34 49 57]"; got != want {
		t.Fatalf("progress marks at blocks %s, want %s", got, want)
	}

	d, err := decode(stream, WithBase(bytes.NewReader(old)))
	if err != nil {
		t.Fatal(err)
	}
	if !d.end.Verified || d.end.Records != 2 || d.end.Covered != 2*tbs {
		t.Fatalf("END verified %v, %d records covering %d", d.end.Verified, d.end.Records, d.end.Covered)
	}

	// Fed up to the mark at block 34, the reader hashes that far once the
	// record before the marks has been taken.
	base := &maxReaderAt{r: bytes.NewReader(old)}
	pr, pw := io.Pipe()
	go pw.Write(stream[:afterMark34])
	r, err := NewReader(pr, WithBase(base))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rec, err := r.Next(); err != nil || rec.Type != Data || rec.Offset != tbs {
		t.Fatalf("first record %v at %d, %v; want DATA at %d", rec.Type, rec.Offset, err, tbs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for base.max.Load() < 34*tbs {
		if time.Now().After(deadline) {
			t.Fatalf("base read up to %d after the mark at %d", base.max.Load(), 34*tbs)
		}
		time.Sleep(time.Millisecond)
	}
	go func() { pw.Write(stream[afterMark34:]); pw.Close() }()
	for {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == End {
			if !rec.Verified {
				t.Fatal("END not verified")
			}
			break
		}
	}
}

// TestWriteOwned: a stream fed with WriteOwned is byte for byte the one
// Write makes, every buffer is released exactly once by the time Close
// returns, and none is used after its release (each is overwritten then).
// Small blocks are lent a segment at a time; with a filter (a delta) only
// the blocks it keeps are copied.
func TestWriteOwned(t *testing.T) {
	data := append(mixed(5<<20+777), make([]byte, 3<<20)...)
	chunks := []int{4 << 20, 1<<20 + 5, 3 << 20, 100, 2<<20 - 105} // whole blocks, parts of blocks, the rest
	shapes := []struct {
		name string
		opts []WriterOption
	}{
		{"1MiB", nil},
		{"4KiB", []WriterOption{WithBlockSize(4096)}},
		{"4KiB-delta", []WriterOption{WithBlockSize(4096), WithFilter(func(off int64, _ []byte) bool { return off/4096%3 == 1 })}},
	}
	for _, c := range codecs[:3] {
		for _, workers := range []int{1, 3} {
			for _, sh := range shapes {
				t.Run(fmt.Sprintf("%s/%d/%s", c.name, workers, sh.name), func(t *testing.T) {
					opts := append([]WriterOption{WithCodec(c.codec, c.level), WithConcurrency(workers), WithSourceSize(int64(len(data)))}, sh.opts...)
					want := encode(t, data, opts...)
					var buf bytes.Buffer
					w, err := NewWriter(&buf, append([]WriterOption{WithStreamID(testID)}, opts...)...)
					if err != nil {
						t.Fatal(err)
					}
					var released atomic.Int32
					sent := 0
					for i := 0; sent < len(data); i++ {
						n := min(chunks[i%len(chunks)], len(data)-sent)
						p := bytes.Clone(data[sent : sent+n])
						var once atomic.Bool
						release := func() {
							if once.Swap(true) {
								t.Errorf("chunk %d released twice", i)
							}
							for k := range p {
								p[k] = 0xAA
							}
							released.Add(1)
						}
						if _, err := w.WriteOwned(p, release); err != nil {
							t.Fatal(err)
						}
						sent += n
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					chunksSent := 0
					for n, i := 0, 0; n < len(data); i++ {
						n += chunks[i%len(chunks)]
						chunksSent++
					}
					if got := int(released.Load()); got != chunksSent {
						t.Fatalf("%d of %d buffers released by Close", got, chunksSent)
					}
					if !bytes.Equal(buf.Bytes(), want) {
						t.Fatal("WriteOwned's stream differs from Write's")
					}
				})
			}
		}
	}
	// After a write error every buffer is still released.
	w, err := NewWriter(&limitWriter{n: 100 << 10}, WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	var released, lent int
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		lent++
		if _, err := w.WriteOwned(randomBytes(4<<20, int64(i)), func() { mu.Lock(); released++; mu.Unlock() }); err != nil {
			break
		}
	}
	w.Close()
	if released != lent {
		t.Fatalf("after a write error %d of %d buffers released", released, lent)
	}
}

// TestAbort: a source that fails part way, of unknown size, ends its stream
// without END: the receiver reads the records flushed before it and then
// reports the stream as truncated, never a verified copy of part of the
// source.
func TestAbort(t *testing.T) {
	data := randomBytes(3<<20+100, 4)
	failed := errors.New("read error")
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, WithCodec(c.codec, c.level), WithBlockSize(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Abort(failed); err != failed {
				t.Fatalf("Abort returned %v, want the source's error", err)
			}
			d, err := decode(buf.Bytes())
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("decoding an aborted stream: %v, want ErrTruncated", err)
			}
			// Records still in the workers when Abort came may be dropped:
			// what arrives is whole blocks of the source, in order.
			if len(d.data)%(1<<20) != 0 || len(d.data) > 3<<20 || !bytes.Equal(d.data, data[:len(d.data)]) {
				t.Errorf("decoded %d bytes before the cut, want a prefix of whole blocks", len(d.data))
			}
		})
	}
}

// TestDigestGoroutines: a Writer aborted and a Reader closed mid-stream
// release the BLAKE3 hashing goroutines.
func TestDigestGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	data := mixed(6 << 20)
	stream := encode(t, data)
	w, err := NewWriter(io.Discard, WithConcurrency(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:5<<20]); err != nil {
		t.Fatal(err)
	}
	w.Abort(errors.New("source failed"))
	r, err := NewReader(bytes.NewReader(stream), WithDecoders(3))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	// Goroutines end just after they signal it; wait for the count, up
	// to a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left of %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
