package blockdev

import "testing"

func TestAlignedBuffer(t *testing.T) {
	for _, align := range []int{1, 2, 8, 512, 4096, 1 << 16} {
		for _, size := range []int{1, 7, 511, 512, 513, 4095, 4096, 4097, 1<<20 + 3} {
			b := AlignedBuffer(size, align)
			if len(b) != size || cap(b) != size {
				t.Errorf("AlignedBuffer(%d, %d): len %d cap %d", size, align, len(b), cap(b))
			}
			if !IsAligned(b, align) {
				t.Errorf("AlignedBuffer(%d, %d) is not aligned", size, align)
			}
			if !IsZero(b) {
				t.Errorf("AlignedBuffer(%d, %d) is not zeroed", size, align)
			}
			b[size-1] = 1 // the whole length is usable
		}
	}
	if b := AlignedBuffer(0, 4096); b == nil || len(b) != 0 {
		t.Errorf("AlignedBuffer(0, 4096) = %#v, want empty non-nil", b)
	}
}

func TestAlignedBufferPanics(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size, align int
	}{
		{"align 0", 10, 0},
		{"align 3", 10, 3},
		{"align -4096", 10, -4096},
		{"negative size", -1, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("AlignedBuffer(%d, %d) did not panic", tc.size, tc.align)
				}
			}()
			AlignedBuffer(tc.size, tc.align)
		})
	}
}

func TestIsAligned(t *testing.T) {
	b := AlignedBuffer(8192, 4096)
	for _, tc := range []struct {
		name  string
		p     []byte
		align int
		want  bool
	}{
		{"aligned 4096", b, 4096, true},
		{"aligned 512", b, 512, true},
		{"offset 512 at 512", b[512:], 512, true},
		{"offset 512 at 4096", b[512:], 4096, false},
		{"offset 1", b[1:], 2, false},
		{"offset 1 align 1", b[1:], 1, true},
		{"empty with aligned array", b[:0], 4096, true},
		{"nil", nil, 1, false},
	} {
		if got := IsAligned(tc.p, tc.align); got != tc.want {
			t.Errorf("%s: IsAligned = %v, want %v", tc.name, got, tc.want)
		}
	}
}
