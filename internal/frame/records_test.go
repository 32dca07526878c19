package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// changedStream writes, with a RecordWriter, the blocks of next that
// differ from prev (ZERO for zero blocks), with prev's digest as the base.
func changedStream(tb testing.TB, prev, next []byte, bs int, opts ...WriterOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	base := sourceDigest(DigestBLAKE3, prev)
	rw, err := NewRecordWriter(&buf, append([]WriterOption{WithStreamID(testID), WithBlockSize(bs),
		WithSourceSize(int64(len(next))), WithExpectedBase(int64(len(prev)), base)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	for off := 0; off < len(next); off += bs {
		b := next[off:min(off+bs, len(next))]
		if off+len(b) <= len(prev) && bytes.Equal(b, prev[off:off+len(b)]) {
			continue
		}
		if isZero(b) {
			err = rw.Zero(int64(off), int64(len(b)))
		} else {
			err = rw.Data(int64(off), b)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := rw.Close(sourceDigest(DigestBLAKE3, next)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestRecordWriter checks that a changed-block stream applied to the
// previous copy gives the new source and verifies against it, with every
// codec, and that it carries its base.
func TestRecordWriter(t *testing.T) {
	prev := mixed(3<<20 + 1000)
	next := append([]byte(nil), prev...)
	copy(next[4096:], randomBytes(4096, 1))
	copy(next[1<<20:], make([]byte, 64<<10))
	copy(next[3<<20:], "changed tail")
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			s := changedStream(t, prev, next, 64<<10, WithCodec(c.codec, c.level))
			d, err := decode(s, WithBase(bytes.NewReader(next)))
			if err != nil {
				t.Fatal(err)
			}
			h := d.hdr
			if !h.Delta() || !h.Base() || h.BaseSize != int64(len(prev)) || h.BaseDigest != sourceDigest(DigestBLAKE3, prev) {
				t.Fatalf("header %+v does not carry the base", h)
			}
			if !d.end.Verified || d.end.Digest != sourceDigest(DigestBLAKE3, next) {
				t.Fatalf("END not verified: %+v", d.end)
			}
			got := append([]byte(nil), prev...)
			for _, r := range d.recs {
				switch r.Type {
				case Data:
					copy(got[r.Offset:], d.data[r.Offset:r.Offset+r.Length])
				case Zero:
					clear(got[r.Offset : r.Offset+r.Length])
				}
			}
			if !bytes.Equal(got, next) {
				t.Fatal("previous copy with the records applied is not the new source")
			}
			if d.end.Records != 3 || d.end.Covered != 2*64<<10+1000 {
				t.Fatalf("stream has %d records covering %d bytes, want the 3 changed blocks", d.end.Records, d.end.Covered)
			}
		})
	}
}

// TestRecordWriterMisuse checks the RecordWriter's refusals and that it
// stays failed.
func TestRecordWriterMisuse(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewRecordWriter(&buf); !errors.Is(err, ErrHeader) {
		t.Errorf("no source size: %v, want ErrHeader", err)
	}
	if _, err := NewRecordWriter(&buf, WithSourceSize(10), WithFilter(func(int64, []byte) bool { return true })); !errors.Is(err, ErrHeader) {
		t.Errorf("filter: %v, want ErrHeader", err)
	}
	// A resumed changed-block delta starts at an offset: no record
	// before it.
	rs, err := NewRecordWriter(&buf, WithSourceSize(8192), WithBlockSize(4096), WithStartOffset(4096))
	if err != nil {
		t.Fatalf("start offset: %v", err)
	}
	if h := rs.Header(); h.StartOffset != 4096 {
		t.Errorf("header start offset %d, want 4096", h.StartOffset)
	}
	if err := rs.Data(0, make([]byte, 10)); err == nil {
		t.Error("record before the start offset accepted")
	}
	if _, err := NewWriter(&buf, WithExpectedBase(10, [32]byte{})); !errors.Is(err, ErrHeader) {
		t.Errorf("Writer with a base: %v, want ErrHeader", err)
	}
	rw, err := NewRecordWriter(&buf, WithSourceSize(8192), WithBlockSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Data(4096, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := rw.Zero(0, 4096); err == nil {
		t.Fatal("record before the last one accepted")
	}
	if err := rw.Zero(5000, 4096); err == nil {
		t.Fatal("failed RecordWriter accepted a record")
	}
	if err := rw.Close([32]byte{}); err == nil {
		t.Fatal("failed RecordWriter closed cleanly")
	}
}

// TestGoldenBase pins the BASE header: a changed-block stream of the
// golden source whose base is the source with "blkpipe" in capitals.
func TestGoldenBase(t *testing.T) {
	next := append(append([]byte("blkpipe\n"), make([]byte, 2*MinBlockSize)...), "end\n"...)
	prev := append([]byte("BLKPIPE\n"), next[8:]...)
	want := golden(t, "small-base.blkp", changedStream(t, prev, next, MinBlockSize))
	p := "testdata/small-base.blkp"
	if len(want) < BaseHeaderLen || binary.LittleEndian.Uint16(want[10:]) != BaseHeaderLen || want[12] != 3 {
		t.Fatalf("%s: header_len %d flags %#x, want %d and DELTA|BASE", p, binary.LittleEndian.Uint16(want[10:]), want[12], BaseHeaderLen)
	}
	d, err := decode(want, WithBase(bytes.NewReader(next)))
	if err != nil || !d.end.Verified || d.hdr.BaseDigest != sourceDigest(DigestBLAKE3, prev) || d.end.Records != 1 {
		t.Fatalf("golden base stream: %v, %+v", err, d.end)
	}
}

// TestRejectBase breaks one rule of the BASE header at a time.
func TestRejectBase(t *testing.T) {
	h := testHeader()
	h.Flags = FlagDelta | FlagBase
	h.BaseSize = 3 * tbs
	end := endRec(3*tbs, 0, 0, [32]byte{})
	fix := func(b []byte) []byte {
		n := len(b)
		binary.LittleEndian.PutUint32(b[n-4:], crc(b[:n-4]))
		return b
	}
	for _, tc := range []struct {
		name string
		hdr  []byte
	}{
		{"base without delta", fix(func() []byte { b := h.marshal(); b[12] = 2; return b }())},
		{"base in a 64-byte header", func() []byte {
			b := h.marshal()[:HeaderLen]
			binary.LittleEndian.PutUint16(b[10:], HeaderLen)
			return fix(b)
		}()},
		{"negative base size", fix(func() []byte { b := h.marshal(); binary.LittleEndian.PutUint64(b[60:], 1<<63); return b }())},
		{"base reserved", fix(func() []byte { b := h.marshal(); b[101] = 1; return b }())},
		{"base header crc", func() []byte { b := h.marshal(); b[70] ^= 1; return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(append(tc.hdr, end...))
			if !errors.Is(err, ErrHeader) && !errors.Is(err, ErrHeaderChecksum) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
	// And the header itself is good.
	d, err := decode(append(h.marshal(), end...))
	if err != nil || d.hdr.BaseSize != 3*tbs || !d.hdr.Base() {
		t.Fatalf("valid base header: %v %+v", err, d.hdr)
	}
}
