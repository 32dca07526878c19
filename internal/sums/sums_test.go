package sums_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/blkpipe/blkpipe/internal/sums"
)

func stream(t testing.TB, data []byte, bs int, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := sums.NewWriter(&out, bs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		k := min(chunk, len(p))
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func readAll(b []byte) ([]uint64, sums.Header, error) {
	r, err := sums.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, sums.Header{}, err
	}
	var d []uint64
	for {
		v, err := r.Next()
		if err == io.EOF {
			return d, r.Header(), nil
		}
		if err != nil {
			return d, r.Header(), err
		}
		d = append(d, v)
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 511, 4096, 4097, 3*4096 + 5, 1 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		for _, chunk := range []int{1, 777, 4096, 1 << 20} {
			if chunk == 1 && size > 5000 {
				continue
			}
			b := stream(t, data, 4096, chunk)
			if want := sums.HeaderLen + 8*int(sums.Blocks(int64(size), 4096)) + sums.TrailerLen; len(b) != want {
				t.Fatalf("size %d: stream is %d bytes, want %d", size, len(b), want)
			}
			d, h, err := readAll(b)
			if err != nil {
				t.Fatalf("size %d chunk %d: %v", size, chunk, err)
			}
			if h.Size != int64(size) || h.BlockSize != 4096 {
				t.Fatalf("header %+v", h)
			}
			for i, v := range d {
				if want := sums.Sum(data[i*4096 : min(size, (i+1)*4096)]); v != want {
					t.Fatalf("size %d: digest %d = %x, want %x", size, i, v, want)
				}
			}
		}
	}
}

func TestReject(t *testing.T) {
	data := bytes.Repeat([]byte("blkpipe sums "), 3000) // 39000 bytes, 10 blocks
	good := stream(t, data, 4096, 4096)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	body := sums.HeaderLen
	swap := mod(func(b []byte) []byte {
		// Swap the digests of blocks 1 and 2.
		a, c := b[body+8:body+16], b[body+16:body+24]
		x := append([]byte(nil), a...)
		copy(a, c)
		copy(c, x)
		return b
	})
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, sums.ErrBadMagic},
		{"frame stream", []byte("\x89BLKP\r\n\x1a" + string(make([]byte, 60))), sums.ErrBadMagic},
		{"truncated header", good[:20], sums.ErrTruncated},
		{"truncated digests", good[:body+20], sums.ErrTruncated},
		{"no trailer", good[:len(good)-sums.TrailerLen], sums.ErrTruncated},
		{"truncated trailer", good[:len(good)-3], sums.ErrTruncated},
		{"reordered", swap, sums.ErrChecksum},
		{"flipped digest", mod(func(b []byte) []byte { b[body+30] ^= 1; return b }), sums.ErrChecksum},
		{"header bit", mod(func(b []byte) []byte { b[25] ^= 1; return b }), sums.ErrHeader},
		{"version", mod(func(b []byte) []byte { b[8] = 2; return b }), sums.ErrVersion},
		{"trailing", append(append([]byte(nil), good...), 0), sums.ErrTrailingData},
		{"another size", retag(t, good, 39000+4096), sums.ErrTruncated},
		{"smaller size", retag(t, good, 39000-4096), sums.ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// retag rewrites the header for another size (valid header CRC), as if the
// digests were spliced under another device's header.
func retag(t *testing.T, good []byte, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	sw, err := sums.NewWriter(&b, 4096, size)
	if err != nil {
		t.Fatal(err)
	}
	sw.Write(make([]byte, size))
	sw.Close()
	return append(b.Bytes()[:sums.HeaderLen:sums.HeaderLen], good[sums.HeaderLen:]...)
}

func TestWriterSize(t *testing.T) {
	var b bytes.Buffer
	w, _ := sums.NewWriter(&b, 4096, 10)
	w.Write(make([]byte, 5))
	if err := w.Close(); !errors.Is(err, sums.ErrSize) {
		t.Fatalf("short: %v", err)
	}
	w, _ = sums.NewWriter(&b, 4096, 10)
	if _, err := w.Write(make([]byte, 11)); !errors.Is(err, sums.ErrSize) {
		t.Fatalf("long: %v", err)
	}
	if _, err := sums.NewWriter(&b, 1000, 10); !errors.Is(err, sums.ErrHeader) {
		t.Fatalf("block size 1000: %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		w, _ := sums.NewWriter(io.Discard, 4096, int64(len(data)))
		w.Write(data)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadErrorNotTruncated: a read error in the header (--against given
// a directory, an I/O error) is reported as that error, not as a
// truncated stream.
func TestReadErrorNotTruncated(t *testing.T) {
	boom := errors.New("is a directory")
	_, err := sums.NewReader(io.MultiReader(bytes.NewReader([]byte(sums.Magic[:3])), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, sums.ErrTruncated) || err.Error() != "read block-sums header: is a directory" {
		t.Errorf("got %v", err)
	}
}

// TestEncodeDecode: Encode of a source's digests is the stream a Writer
// writes for it, and Decode gives them back.
func TestEncodeDecode(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 4096*3 + 17} {
		data := bytes.Repeat([]byte{7, 1, 9}, size/3+1)[:size]
		want := stream(t, data, 4096, 1000)
		var ds []uint64
		for p := data; len(p) > 0; p = p[min(4096, len(p)):] {
			ds = append(ds, sums.Sum(p[:min(4096, len(p))]))
		}
		got, err := sums.Encode(4096, int64(size), ds)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: Encode differs from the Writer's stream (%v)", size, err)
		}
		h, back, err := sums.Decode(got)
		if err != nil || h.Size != int64(size) || len(back) != len(ds) {
			t.Fatalf("size %d: Decode: %+v, %d digests, %v", size, h, len(back), err)
		}
		if _, err := sums.Encode(4096, int64(size)+4096, ds); err == nil {
			t.Fatalf("size %d: Encode with too few digests did not fail", size)
		}
	}
}
