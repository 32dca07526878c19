package blockdev

import (
	"fmt"
	"testing"
)

func naiveZeroPrefixLen(p []byte) int {
	for i, c := range p {
		if c != 0 {
			return i
		}
	}
	return len(p)
}

func TestIsZero(t *testing.T) {
	for _, size := range []int{0, 1, 7, 8, 9, 63, 64, 4095, 4096, 4097, 8192, 1<<20 + 5} {
		p := make([]byte, size)
		if !IsZero(p) {
			t.Errorf("IsZero(%d zeros) = false", size)
		}
		if got := ZeroPrefixLen(p); got != size {
			t.Errorf("ZeroPrefixLen(%d zeros) = %d", size, got)
		}
		// A single non-zero byte at every interesting position.
		for _, pos := range []int{0, 1, 7, 8, size / 2, 4095, 4096, 4097, size - 9, size - 8, size - 1} {
			if pos < 0 || pos >= size {
				continue
			}
			for _, v := range []byte{1, 0x80, 0xff} {
				p[pos] = v
				if IsZero(p) {
					t.Errorf("IsZero(size %d, byte %d = %#x) = true", size, pos, v)
				}
				if got := ZeroPrefixLen(p); got != pos {
					t.Errorf("ZeroPrefixLen(size %d, byte %d = %#x) = %d", size, pos, v, got)
				}
				p[pos] = 0
			}
		}
	}
}

func TestIsZeroUnaligned(t *testing.T) {
	buf := make([]byte, 3*4096+64)
	for start := 0; start < 16; start++ {
		p := buf[start : start+2*4096+13]
		if !IsZero(p) {
			t.Errorf("start %d: IsZero = false", start)
		}
		buf[start+4096+3] = 1
		if IsZero(p) {
			t.Errorf("start %d: IsZero = true with a 1 inside", start)
		}
		if got := ZeroPrefixLen(p); got != 4096+3 {
			t.Errorf("start %d: ZeroPrefixLen = %d, want %d", start, got, 4096+3)
		}
		buf[start+4096+3] = 0
		// Non-zero bytes just outside p are not looked at.
		buf[start+len(p)] = 1
		if start > 0 {
			buf[start-1] = 1
		}
		if !IsZero(p) || ZeroPrefixLen(p) != len(p) {
			t.Errorf("start %d: bytes outside p were read", start)
		}
		buf[start+len(p)] = 0
		if start > 0 {
			buf[start-1] = 0
		}
	}
}

func FuzzIsZero(f *testing.F) {
	f.Add([]byte{}, 0, 0)
	f.Add([]byte{1}, 0, 0)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 0, 0)
	f.Add([]byte{0, 0, 0, 3}, 5000, 4100)
	f.Fuzz(func(t *testing.T, tail []byte, zeroLead, at int) {
		// Build a long zero run followed by tail, so the chunked paths are
		// exercised too; at optionally plants a byte of tail inside it.
		zeroLead = zeroLead & 0x3fff
		p := append(make([]byte, zeroLead), tail...)
		if len(tail) > 0 && len(p) > 0 {
			p[(at&0x7fffffff)%len(p)] |= tail[0]
		}
		want := naiveZeroPrefixLen(p)
		if got := ZeroPrefixLen(p); got != want {
			t.Fatalf("ZeroPrefixLen = %d, naive %d (len %d)", got, want, len(p))
		}
		if got := IsZero(p); got != (want == len(p)) {
			t.Fatalf("IsZero = %v, naive prefix %d of %d", got, want, len(p))
		}
	})
}

func BenchmarkIsZero(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprint(size>>10, "KiB"), func(b *testing.B) {
			p := AlignedBuffer(size, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				if !IsZero(p) {
					b.Fatal("IsZero = false on zeros")
				}
			}
		})
	}
}

func BenchmarkZeroPrefixLen(b *testing.B) {
	const size = 1 << 20
	p := AlignedBuffer(size, 4096)
	p[size-1] = 1
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if ZeroPrefixLen(p) != size-1 {
			b.Fatal("wrong prefix")
		}
	}
}
