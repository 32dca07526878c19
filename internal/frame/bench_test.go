package frame

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// benchData is 32 MiB of text, random and zero regions (see mixed),
// made on first use so that other tests' processes do not carry it.
var benchData = sync.OnceValue(func() []byte { return mixed(32 << 20) })

func BenchmarkEncode(b *testing.B) {
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			var out countWriter
			b.ReportAllocs()
			b.SetBytes(int64(len(benchData())))
			b.ResetTimer()
			for b.Loop() {
				out = 0
				w, err := NewWriter(&out, WithCodec(c.codec, c.level))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(benchData()); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(len(benchData())), "ratio")
		})
	}
}

// BenchmarkDecode decodes and verifies the SHA-256; the noverify variants
// show what the serial SHA-256 costs.
func BenchmarkDecode(b *testing.B) {
	for _, c := range codecs {
		benchDecode(b, c.name, c.codec, c.level)
		benchDecode(b, c.name+"-noverify", c.codec, c.level, WithVerify(false))
	}
}

func benchDecode(b *testing.B, name string, codec Codec, level int, opts ...ReaderOption) {
	b.Run(name, func(b *testing.B) {
		stream := encode(b, benchData(), WithCodec(codec, level))
		b.ReportAllocs()
		b.SetBytes(int64(len(benchData())))
		b.ResetTimer()
		for b.Loop() {
			r, err := NewReader(bytes.NewReader(stream), opts...)
			if err != nil {
				b.Fatal(err)
			}
			var n int64
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n += rec.Length
			}
			if n != int64(len(benchData())) {
				b.Fatalf("decoded %d bytes", n)
			}
		}
	})
}

// countWriter counts bytes written, so the benchmark measures framing,
// not a growing buffer.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
