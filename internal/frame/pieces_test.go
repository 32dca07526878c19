package frame

import (
	"bytes"
	"testing"
)

// TestWorkersHashPieces covers the Writer whose workers hash its blocks
// (BLAKE3 with blocks of one digest piece): END's digest must be the
// source's with zero blocks, left-out blocks, a start offset, an unknown
// size and a last block of any length; an unaligned start offset hashes
// the usual way.
func TestWorkersHashPieces(t *testing.T) {
	const mib = 1 << 20
	src := append(append(mixed(5*mib+300), make([]byte, 3*mib)...), mostlyZero(2*mib+7)...)
	odd := func(off int64, _ []byte) bool { return off/mib%2 == 1 }
	for _, tc := range []struct {
		name   string
		n      int   // bytes of src
		start  int64 // start offset
		sized  bool
		filter bool
		fused  bool // the workers hash
	}{
		{"one byte", 1, 0, true, false, true},
		{"one piece", mib, 0, true, false, true},
		{"whole pieces unsized", 8 * mib, 0, false, false, true},
		{"mixed", len(src), 0, true, false, true},
		{"mixed unsized", len(src) - 5, 0, false, false, true},
		{"delta", len(src), 0, true, true, true},
		{"resume", len(src), 2 * mib, true, false, true},
		{"resume at the end", 3 * mib, 3 * mib, true, false, true},
		{"resume unaligned", len(src), 2*mib + 4096, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := src[:tc.n]
			opts := []WriterOption{WithCodec(CodecLZ4, 0), WithStartOffset(tc.start)}
			if tc.sized {
				opts = append(opts, WithSourceSize(int64(len(data))))
			}
			if tc.filter {
				opts = append(opts, WithFilter(odd))
			}
			var buf bytes.Buffer
			w, err := NewWriter(&buf, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if fused := w.pieces != nil; fused != tc.fused {
				t.Fatalf("workers hash: %v, want %v", fused, tc.fused)
			}
			w.HashOnly(data[:tc.start])
			// Lent in chunks of 3 MiB, as blkcat lends its reads, and a
			// copied rest.
			p := data[tc.start:]
			for len(p) > 3*mib {
				if _, err := w.WriteOwned(p[:3*mib], func() {}); err != nil {
					t.Fatal(err)
				}
				p = p[3*mib:]
			}
			if _, err := w.Write(p); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			want := sourceDigest(DigestBLAKE3, data)
			if w.Digest() != want {
				t.Fatalf("digest %x, want %x", w.Digest(), want)
			}
			d, err := decode(buf.Bytes())
			if tc.start > 0 || tc.filter {
				// Not the whole source: END carries the digest, unverified.
				if err != nil || d.end.Digest != want {
					t.Fatalf("END digest %x (%v), want %x", d.end.Digest, err, want)
				}
				return
			}
			if err != nil || !bytes.Equal(d.data, data) || !d.end.Verified || d.end.Digest != want {
				t.Fatalf("decoded %d bytes (%v), verified %v", len(d.data), err, d.end.Verified)
			}
		})
	}
}
