package changes

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

func TestRangeNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Range
		want List
	}{
		{"empty", nil, List{}},
		{"one", []Range{{10, 5}}, List{{10, 5}}},
		{"drops empty and negative lengths", []Range{{0, 0}, {5, -3}, {7, 1}}, List{{7, 1}}},
		{"sorts", []Range{{20, 5}, {0, 5}, {10, 5}}, List{{0, 5}, {10, 5}, {20, 5}}},
		{"merges overlap", []Range{{0, 10}, {5, 10}}, List{{0, 15}}},
		{"coalesces adjacent", []Range{{0, 4096}, {4096, 4096}, {8192, 1}}, List{{0, 8193}}},
		{"contained", []Range{{0, 100}, {10, 5}, {50, 50}}, List{{0, 100}}},
		{"unsorted overlap", []Range{{50, 10}, {0, 10}, {55, 20}, {10, 1}}, List{{0, 11}, {50, 25}}},
		{"negative offset clipped", []Range{{-10, 15}, {-10, 5}}, List{{0, 5}}},
		{"saturates at MaxInt64", []Range{{math.MaxInt64 - 1, 10}, {10, math.MaxInt64}},
			List{{10, math.MaxInt64 - 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalize(slices.Clone(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Normalize(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestRangeAlign(t *testing.T) {
	const K = 1024
	for _, tc := range []struct {
		name       string
		in         List
		unit, size int64
		want       List
	}{
		{"already aligned", List{{64 * K, 64 * K}}, 64 * K, 1 << 20, List{{64 * K, 64 * K}}},
		{"widens both ends", List{{4 * K, 4 * K}}, 64 * K, 1 << 20, List{{0, 64 * K}}},
		{"straddles a boundary", List{{60 * K, 8 * K}}, 64 * K, 1 << 20, List{{0, 128 * K}}},
		{"neighbours merge", List{{4 * K, 1}, {100 * K, 1}}, 64 * K, 1 << 20, List{{0, 128 * K}}},
		{"clips to size", List{{1<<20 - 100, 100}}, 64 * K, 1<<20 - 10, List{{1<<20 - 64*K, 64*K - 10}}},
		{"beyond size dropped", List{{0, 1}, {2 << 20, 4 * K}}, 4 * K, 1 << 20, List{{0, 4 * K}}},
		{"unit 1 only clips", List{{3, 5}, {20, 100}}, 1, 50, List{{3, 5}, {20, 30}}},
		{"size 0", List{{0, 10}}, 4 * K, 0, List{}},
		{"saturates", List{{math.MaxInt64 - 10, 10}}, 4 * K, math.MaxInt64,
			List{{math.MaxInt64 - 10 - (math.MaxInt64-10)%(4*K), 10 + (math.MaxInt64-10)%(4*K)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := tc.in.Align(tc.unit, tc.size)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%v.Align(%d, %d) = %v, want %v", tc.in, tc.unit, tc.size, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Fatalf("Align changed its receiver to %v", tc.in)
			}
		})
	}
}

func TestRangeCovers(t *testing.T) {
	l := List{{0, 10}, {20, 10}, {100, 1}}
	for _, tc := range []struct {
		r    Range
		want bool
	}{
		{Range{0, 10}, true},
		{Range{5, 5}, true},
		{Range{5, 6}, false},
		{Range{10, 1}, false},
		{Range{19, 2}, false},
		{Range{29, 1}, true},
		{Range{100, 1}, true},
		{Range{101, 1}, false},
		{Range{500, 0}, true},
		{Range{5, 20}, false},
	} {
		if got := l.Covers(tc.r); got != tc.want {
			t.Errorf("%v.Covers(%v) = %v, want %v", l, tc.r, got, tc.want)
		}
	}
	if (List{}).Covers(Range{0, 1}) {
		t.Error("an empty list covers a byte")
	}
}

func TestRangeBytes(t *testing.T) {
	if got := (List{{0, 10}, {20, 5}}).Bytes(); got != 15 {
		t.Fatalf("Bytes = %d, want 15", got)
	}
}

// checkNormal fails tb unless l is normalised.
func checkNormal(tb testing.TB, l List) {
	tb.Helper()
	for i, r := range l {
		if r.Off < 0 || r.Len <= 0 {
			tb.Fatalf("range %d of %v is %v: negative offset or empty", i, l, r)
		}
		if i > 0 && r.Off <= l[i-1].End() {
			tb.Fatalf("ranges %d and %d of %v overlap, touch or are out of order", i-1, i, l)
		}
	}
}

// FuzzRangeNormalize checks Normalize and Align against a bitmap of a small
// address space: the result is normalised and covers exactly the input.
func FuzzRangeNormalize(f *testing.F) {
	f.Add([]byte{0, 10, 5, 0, 20, 5, 8, 10}, uint8(8), uint16(100))
	f.Add([]byte{255, 1, 0, 0, 3, 3, 250, 10}, uint8(1), uint16(300))
	f.Fuzz(func(t *testing.T, data []byte, unit8 uint8, size16 uint16) {
		const space = 1 << 10
		var in []Range
		for ; len(data) >= 4; data = data[4:] {
			// Offsets from -256 to 767, lengths from -32 to 223: overlaps,
			// touches, negatives and empties are all common.
			off := int64(binary.LittleEndian.Uint16(data)%space) - 256
			n := int64(int16(binary.LittleEndian.Uint16(data[2:]))%256) - 32
			in = append(in, Range{off, n})
		}
		var want [space]bool
		for _, r := range in {
			for b := max(r.Off, 0); b < r.Off+r.Len; b++ {
				want[b] = true
			}
		}
		l := Normalize(slices.Clone(in))
		checkNormal(t, l)
		var got [space]bool
		for _, r := range l {
			for b := r.Off; b < r.End(); b++ {
				if b >= space {
					t.Fatalf("Normalize(%v) = %v reaches %d", in, l, b)
				}
				got[b] = true
			}
		}
		if got != want {
			t.Fatalf("Normalize(%v) = %v covers different bytes", in, l)
		}

		unit, size := int64(unit8)+1, int64(size16%space)
		a := l.Align(unit, size)
		checkNormal(t, a)
		for b := int64(0); b < space; b++ {
			in := a.Covers(Range{b, 1})
			switch {
			case b < size && want[b] && !in:
				t.Fatalf("%v.Align(%d, %d) = %v misses byte %d", l, unit, size, a, b)
			case b >= size && in:
				t.Fatalf("%v.Align(%d, %d) = %v reaches byte %d", l, unit, size, a, b)
			case in && !want[b]:
				// Only widening may add a byte: some byte of its unit
				// must have been in the input.
				u := b - b%unit
				found := false
				for c := u; c < u+unit && c < space; c++ {
					found = found || want[c]
				}
				if !found {
					t.Fatalf("%v.Align(%d, %d) = %v adds byte %d from an untouched unit", l, unit, size, a, b)
				}
			}
		}
	})
}
