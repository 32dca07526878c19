package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// observe feeds b to a new Observer in chunks of at most chunk bytes,
// checking the invariants after every Write, and returns it.
func observe(tb testing.TB, b []byte, chunk func(i int) int) *Observer {
	tb.Helper()
	var o Observer
	last, stopped, written := int64(0), false, int64(0)
	for i := 0; len(b) > 0; i++ {
		k := min(max(chunk(i), 1), len(b))
		if n, err := o.Write(b[:k]); n != k || err != nil {
			tb.Fatalf("Write(%d bytes) = %d, %v", k, n, err)
		}
		b = b[k:]
		written += int64(k)
		pos := o.Pos()
		switch h, ok := o.Header(); {
		case pos < last:
			tb.Fatalf("Pos went back from %d to %d", last, pos)
		case stopped && pos != last:
			tb.Fatalf("Pos moved from %d to %d after the Observer stopped", last, pos)
		case ok && (pos < h.StartOffset || h.SourceSize >= 0 && pos > h.SourceSize):
			tb.Fatalf("Pos %d outside [%d, %d]", pos, h.StartOffset, h.SourceSize)
		case !ok && pos != 0:
			tb.Fatalf("Pos %d without a header", pos)
		case o.Done() && o.Err() != nil:
			tb.Fatalf("Done and Err %v", o.Err())
		case o.Err() == nil && o.Offset() != written || o.Offset() > written || o.Offset() < 0:
			tb.Fatalf("Offset %d after %d bytes (err %v)", o.Offset(), written, o.Err())
		}
		last, stopped = pos, o.Err() != nil
	}
	return &o
}

func whole(int) int       { return 1 << 30 }
func bytewise(int) int    { return 1 }
func irregular(i int) int { return 1 + i*7919%5000 }

func TestObserver(t *testing.T) {
	h := testHeader()
	hdr := h.marshal()
	delta := h
	delta.Flags |= FlagDelta
	resume := h
	resume.StartOffset = tbs
	unknown := h
	unknown.SourceSize = -1
	body := validStream()[HeaderLen:]
	rest := validStream()[HeaderLen+RecordHeaderLen+tbs:] // after the first DATA record
	data := append(mixed(300000), make([]byte, 70000)...)
	longHeader := func() []byte {
		b := h.marshal()[:56]
		binary.LittleEndian.PutUint16(b[10:], 72)
		b = append(b, make([]byte, 12)...)
		return binary.LittleEndian.AppendUint32(b, crc(b))
	}()
	// Offset where the Observer stops: the byte, header or record header
	// that stopped it included; all of the stream for the others.
	stopAt := map[string]int{
		"raw data": 1, "one bad byte": 2, "version 2": HeaderLen, "header damaged": HeaderLen, "bad block size": HeaderLen,
		"record damaged": HeaderLen + 2*RecordHeaderLen + tbs, "gap without delta": HeaderLen + RecordHeaderLen,
		"backwards": HeaderLen + 2*RecordHeaderLen, "beyond size": HeaderLen + RecordHeaderLen, "unknown type": HeaderLen + RecordHeaderLen,
		"END too short": HeaderLen + 2*RecordHeaderLen, "trailing byte": len(validStream()), "two streams": len(validStream()),
	}
	flipped := validStream()
	flipped[HeaderLen+RecordHeaderLen+tbs+9] ^= 1 // the ZERO record's offset
	for _, tc := range []struct {
		name   string
		stream []byte
		pos    int64 // Pos at the end
		size   int64 // the header's source size; 0: no header
		done   bool
		err    error // why it stopped; nil: it did not
	}{
		{"valid", validStream(), 3 * tbs, 3 * tbs, true, nil},
		{"half the first block", validStream()[:HeaderLen+RecordHeaderLen+tbs/2], tbs / 2, 3 * tbs, false, nil},
		{"header only", hdr, 0, 3 * tbs, false, nil},
		{"half a header", hdr[:40], 0, 0, false, nil},
		{"longer header", join(longHeader, body), 3 * tbs, 3 * tbs, true, nil},
		{"ancillary record", join(hdr, dataRec(0, blockA), rec(recHeader{typ: 'q', storedLen: 5, offset: 77}, []byte("hello")), rest), 3 * tbs, 3 * tbs, true, nil},
		{"delta gap", join(delta.marshal(), dataRec(0, blockA), lz4Rec(2*tbs, blockC, tbs)[:RecordHeaderLen]), 2 * tbs, 3 * tbs, false, nil},
		{"delta end", join(delta.marshal(), dataRec(0, blockA), endRec(3*tbs, 1, tbs, srcDigest)), 3 * tbs, 3 * tbs, true, nil},
		{"progress mark", join(delta.marshal(), markRec(2*tbs)), 2 * tbs, 3 * tbs, false, nil},
		{"resume", join(resume.marshal(), zeroRec(tbs, tbs)), 2 * tbs, 3 * tbs, false, nil},
		{"resume header", resume.marshal(), tbs, 3 * tbs, false, nil},
		{"unknown size", join(unknown.marshal(), body), 3 * tbs, -1, true, nil},
		{"writer lz4", encode(t, data, WithCodec(CodecLZ4, 0), WithBlockSize(4096)), int64(len(data)), -1, true, nil},
		{"writer zstd sized", encode(t, data, WithCodec(CodecZstd, 3), WithBlockSize(65536), WithSourceSize(int64(len(data)))), int64(len(data)), int64(len(data)), true, nil},
		{"writer none", encode(t, data, WithSourceSize(int64(len(data)))), int64(len(data)), int64(len(data)), true, nil},

		{"raw data", []byte("blkpipe is not framed"), 0, 0, false, ErrBadMagic},
		{"one bad byte", []byte{0x89, 'X'}, 0, 0, false, ErrBadMagic},
		{"version 2", headerWith(h, func(b []byte) { b[8] = 2 }), 0, 0, false, ErrVersion},
		{"header damaged", append(bytes.Clone(hdr[:30]), append([]byte{hdr[30] ^ 1}, hdr[31:]...)...), 0, 0, false, ErrHeaderChecksum},
		{"bad block size", headerWith(h, func(b []byte) { b[16] = 1 }), 0, 0, false, ErrHeader},
		{"record damaged", flipped, tbs, 3 * tbs, false, ErrChecksum},
		{"gap without delta", join(hdr, zeroRec(tbs, tbs)), 0, 3 * tbs, false, ErrOrder},
		{"backwards", join(hdr, zeroRec(0, 2*tbs), zeroRec(tbs, tbs)), 2 * tbs, 3 * tbs, false, ErrOrder},
		{"beyond size", join(hdr, zeroRec(0, 4*tbs)), 0, 3 * tbs, false, ErrRange},
		{"unknown type", join(hdr, rec(recHeader{typ: 'X'}, nil)), 0, 3 * tbs, false, ErrCorrupt},
		{"END too short", join(hdr, zeroRec(0, 3*tbs), rec(recHeader{typ: typeEnd, storedLen: 8, offset: 3 * tbs}, make([]byte, 8))), 3 * tbs, 3 * tbs, false, ErrCorrupt},
		{"trailing byte", join(validStream(), []byte{0}), 3 * tbs, 3 * tbs, false, ErrTrailingData},
		{"two streams", join(validStream(), validStream()), 3 * tbs, 3 * tbs, false, ErrTrailingData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []func(int) int{whole, bytewise, irregular} {
				o := observe(t, tc.stream, chunk)
				hd, ok := o.Header()
				if o.Pos() != tc.pos || o.Done() != tc.done || ok != (tc.size != 0) || ok && hd.SourceSize != tc.size {
					t.Fatalf("Pos %d Done %v header %v size %d; want %d %v %v %d (err %v)",
						o.Pos(), o.Done(), ok, hd.SourceSize, tc.pos, tc.done, tc.size != 0, tc.size, o.Err())
				}
				if tc.err == nil && o.Err() != nil || tc.err != nil && !errors.Is(o.Err(), tc.err) {
					t.Fatalf("Err %v, want %v", o.Err(), tc.err)
				}
				want, ok := stopAt[tc.name]
				if !ok {
					want = len(tc.stream)
				}
				if o.Offset() != int64(want) {
					t.Fatalf("Offset %d, want %d (err %v)", o.Offset(), want, o.Err())
				}
			}
		})
	}
}

// TestObserverProgress checks that a DATA record moves Pos in proportion
// to its payload, so a big compressed block does not jump at its end.
func TestObserverProgress(t *testing.T) {
	s := join(testHeader().marshal(), lz4Rec(0, blockC, tbs))
	stored := len(s) - HeaderLen - RecordHeaderLen
	var o Observer
	o.Write(s[:HeaderLen+RecordHeaderLen])
	if o.Pos() != 0 {
		t.Fatalf("Pos %d after the record header", o.Pos())
	}
	o.Write(s[HeaderLen+RecordHeaderLen : HeaderLen+RecordHeaderLen+stored/2])
	if want := int64(tbs * (stored / 2) / stored); o.Pos() != want {
		t.Fatalf("Pos %d halfway through the payload, want %d", o.Pos(), want)
	}
	o.Write(s[HeaderLen+RecordHeaderLen+stored/2:])
	if o.Pos() != tbs {
		t.Fatalf("Pos %d after the payload, want %d", o.Pos(), tbs)
	}
}

// TestObserverAllocs checks that observing a stream allocates nothing
// (beyond the Observer itself).
func TestObserverAllocs(t *testing.T) {
	s := encode(t, append(mixed(200000), make([]byte, 50000)...), WithCodec(CodecLZ4, 0), WithBlockSize(4096))
	o := new(Observer)
	allocs := testing.AllocsPerRun(10, func() {
		*o = Observer{}
		for p := s; len(p) > 0; {
			k := min(len(p), 1000)
			o.Write(p[:k])
			p = p[k:]
		}
		if !o.Done() {
			t.Fatal(o.Err())
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per stream", allocs)
	}
}

// FuzzObserve: an Observer never fails a Write or panics; Pos never goes
// back, stays within the header's [start offset, source size] and stops
// moving once the Observer stopped; how the bytes are cut into Writes
// changes nothing; and a stream a Reader accepts to the end, the Observer
// follows to END's offset.
func FuzzObserve(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, b := range [][]byte{b, repairCRCs(bytes.Clone(b))} {
			o := observe(t, b, whole)
			cut := observe(t, b, func(i int) int { return 1 + int(b[i%len(b)])%61 })
			if o.Pos() != cut.Pos() || o.Done() != cut.Done() || (o.Err() == nil) != (cut.Err() == nil) {
				t.Fatalf("whole: Pos %d Done %v Err %v; cut: Pos %d Done %v Err %v",
					o.Pos(), o.Done(), o.Err(), cut.Pos(), cut.Done(), cut.Err())
			}
			r, err := NewReader(bytes.NewReader(b), WithDecoders(1), WithVerify(false))
			if err != nil {
				continue
			}
			var end Record
			for err == nil && end.Type != End {
				end, err = r.Next()
			}
			if err == nil {
				_, err = r.Next() // io.EOF: nothing followed END
			}
			r.Close()
			if err == io.EOF && (!o.Done() || o.Err() != nil || o.Pos() != end.Offset) {
				t.Fatalf("the Reader read the stream to END at %d; the Observer: Done %v, Pos %d, Err %v", end.Offset, o.Done(), o.Pos(), o.Err())
			}
		}
	})
}
