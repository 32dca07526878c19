package frame

import (
	"bytes"
	"flag"
	"io"
	"sync"
	"testing"
)

var benchSize = flag.Int("benchsize", 32<<20, "bytes of source in the Encode and Decode benchmarks")

// benchData is -benchsize bytes (32 MiB) of text, random and zero regions
// (see mixed), made on first use so that other tests' processes do not
// carry it.
var benchData = sync.OnceValue(func() []byte { return mixed(*benchSize) })

// BenchmarkEncode frames benchData with each codec and digest.
func BenchmarkEncode(b *testing.B) {
	for _, c := range codecs {
		for _, alg := range algs {
			b.Run(c.name+"/"+alg.String(), func(b *testing.B) {
				var out countWriter
				b.ReportAllocs()
				b.SetBytes(int64(len(benchData())))
				b.ResetTimer()
				for b.Loop() {
					out = 0
					w, err := NewWriter(&out, WithCodec(c.codec, c.level), WithDigest(alg))
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
}

// BenchmarkDecode decodes and verifies each digest; the noverify variants
// show what the digest costs.
func BenchmarkDecode(b *testing.B) {
	for _, c := range codecs {
		for _, alg := range algs {
			benchDecode(b, c.name+"/"+alg.String(), c.codec, c.level, alg)
		}
		benchDecode(b, c.name+"/noverify", c.codec, c.level, DefaultDigest, WithVerify(false))
	}
}

func benchDecode(b *testing.B, name string, codec Codec, level int, alg DigestAlg, opts ...ReaderOption) {
	b.Run(name, func(b *testing.B) {
		stream := encode(b, benchData(), WithCodec(codec, level), WithDigest(alg))
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
