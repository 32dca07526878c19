package digest

import (
	"fmt"
	"testing"

	"lukechampine.com/blake3"
)

// Run with -cpu 1,2 to compare cores; "lib" is the library's own Sum256
// for reference.
func BenchmarkSum(b *testing.B) {
	for _, n := range []int{1 << 20, 64 << 20} {
		data := gen("random", n)
		want := blake3.Sum256(data)
		name := fmt.Sprintf("%dMiB", n>>20)
		b.Run("Sum256/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if Sum256(data) != want {
					b.Fatal("wrong digest")
				}
			}
		})
		b.Run("Hasher/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				h := New()
				for p := data; len(p) > 0; p = p[min(len(p), 256<<10):] {
					h.Write(p[:min(len(p), 256<<10)])
				}
				if h.Sum() != want {
					b.Fatal("wrong digest")
				}
			}
		})
		b.Run("lib/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if blake3.Sum256(data) != want {
					b.Fatal("wrong digest")
				}
			}
		})
	}
}

func BenchmarkTreeSet(b *testing.B) {
	m := testMap(b, 64<<20)
	t, err := m.Tree()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		t.Set(i%t.Len(), m.Leaves[0])
		i += 97
	}
}
