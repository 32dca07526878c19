package frame

import (
	"bytes"
	"cmp"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4RoundTrip compresses src with e into a buffer of room bytes and
// checks that the LZ4 reference decoder (pierrec/lz4) gives src back; it
// returns the compressed length, 0 when it did not fit.
func lz4RoundTrip(t testing.TB, e *lz4Encoder, src []byte, room int) int {
	t.Helper()
	dst := make([]byte, room)
	n := e.compress(src, dst)
	if n == 0 {
		return 0
	}
	got := make([]byte, len(src)+64)
	m, err := lz4.UncompressBlock(dst[:n], got)
	if err != nil || !bytes.Equal(got[:m], src) {
		t.Fatalf("%d bytes: compressed to %d, decoded to %d bytes (%v), differ: %v", len(src), n, m, err, !bytes.Equal(got[:m], src))
	}
	return n
}

func TestLZ4Encoder(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 3000)
	inputs := map[string][]byte{
		"empty":    {},
		"one":      {7},
		"twelve":   []byte("abcabcabcabc"),
		"thirteen": []byte("abcabcabcabca"),
		"zeros":    make([]byte, 1<<20),
		"text":     text,
		"random":   randomBytes(1<<16, 3),
		"mixed":    mixed(1 << 20),
		// A long match that reaches the end, and literals over 255.
		"tail": append(randomBytes(1000, 4), make([]byte, 5000)...),
	}
	for n := range 40 {
		inputs["short"+string(rune('a'+n))] = bytes.Repeat([]byte{byte(r.Intn(3))}, n)
	}
	var e lz4Encoder
	for name, src := range inputs {
		t.Run(name, func(t *testing.T) {
			// Room for anything (the format's bound), then one byte short
			// of src as the Writer asks.
			big := lz4RoundTrip(t, &e, src, len(src)+len(src)/255+16)
			if big == 0 {
				t.Fatalf("%d bytes did not fit the LZ4 bound", len(src))
			}
			small := lz4RoundTrip(t, &e, src, max(len(src)-1, 0))
			if (small == 0) != (big >= len(src)) {
				t.Fatalf("with room for %d bytes: %d; with the bound: %d", len(src)-1, small, big)
			}
		})
	}
	// Compressible inputs shrink as the reference compressor shrinks
	// them, give or take a little.
	for _, name := range []string{"zeros", "text", "mixed"} {
		src := inputs[name]
		ours := lz4RoundTrip(t, &e, src, len(src))
		ref, err := lz4.CompressBlock(src, make([]byte, lz4.CompressBlockBound(len(src))), nil)
		if err != nil || ours == 0 || float64(ours) > 1.05*float64(ref) {
			t.Errorf("%s: %d bytes compressed to %d, pierrec/lz4 to %d (%v)", name, len(src), ours, ref, err)
		}
	}
}

// TestLZ4EncoderReuse compresses many blocks with one encoder, so that
// stale table entries of earlier blocks, and the wrap of its running
// positions, are met.
func TestLZ4EncoderReuse(t *testing.T) {
	var e lz4Encoder
	src := mixed(1 << 18)
	for i := range 8 {
		lz4RoundTrip(t, &e, src[i*1000:], len(src))
	}
	e.base = lz4MaxBase - 1000 // the next block wraps
	for i := range 3 {
		lz4RoundTrip(t, &e, src[i*7:], len(src))
	}
}

func FuzzLZ4Encoder(f *testing.F) {
	f.Add([]byte("abcabcabcabcabcabc"), []byte("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"))
	f.Add(randomBytes(300, 5), make([]byte, 300))
	var e lz4Encoder
	f.Fuzz(func(t *testing.T, a, b []byte) {
		src := append(append(append([]byte{}, a...), b...), a...)
		if lz4RoundTrip(t, &e, src, len(src)+len(src)/255+16) == 0 {
			t.Fatalf("%d bytes did not fit the LZ4 bound", len(src))
		}
		lz4RoundTrip(t, &e, src, max(len(src)-1, 0))
	})
}

// lz4BenchData is up to 16 MiB of Go's own sources and binaries (text and
// machine code, as on a real volume), or mixed when GOROOT is not there:
// random regions, which pierrec/lz4 skips faster, weigh on mixed's result.
var lz4BenchData = sync.OnceValue(func() []byte {
	var b []byte
	for i, dir := range []string{"src/runtime", "pkg/tool", "bin"} {
		budget := (i + 1) * 16 << 20 / 3 // about a third from each
		filepath.WalkDir(filepath.Join(runtime.GOROOT(), dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && len(b) < budget {
				if f, err := os.ReadFile(p); err == nil {
					b = append(b, f...)
				}
			}
			return nil
		})
	}
	b = b[:len(b)&^(1<<20-1)]
	if len(b) < 4<<20 {
		return mixed(8 << 20)
	}
	return b
})

// BenchmarkLZ4Block compresses 1 MiB blocks with the Writer's encoder and
// with pierrec/lz4's CompressBlock, the one it replaced; compare with
// lz4 -b1 on the same bytes for the C reference.
func BenchmarkLZ4Block(b *testing.B) {
	src := lz4BenchData()
	dst := make([]byte, 1<<20)
	run := func(b *testing.B, compress func(src, dst []byte) int) {
		b.SetBytes(int64(len(src)))
		var out int
		for b.Loop() {
			out = 0
			for i := 0; i < len(src); i += 1 << 20 {
				blk := src[i : i+1<<20]
				n := compress(blk, dst[:len(blk)-1])
				out += cmp.Or(n, len(blk))
			}
		}
		b.ReportMetric(float64(out)/float64(len(src)), "ratio")
	}
	b.Run("frame", func(b *testing.B) {
		var e lz4Encoder
		run(b, e.compress)
	})
	b.Run("pierrec", func(b *testing.B) {
		var c lz4.Compressor
		run(b, func(src, dst []byte) int {
			n, _ := c.CompressBlock(src, dst)
			return n
		})
	})
}
