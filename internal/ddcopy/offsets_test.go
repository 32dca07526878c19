package ddcopy

import (
	"math"
	"testing"
)

func TestMulAdd(t *testing.T) {
	for _, tc := range []struct {
		n, size, tail int64
		want          int64
		ok            bool
	}{
		{0, 512, 0, 0, true},
		{3, 512, 7, 1543, true},
		{1 << 60, 512, 0, 0, false}, // skip=1E: 2^69
		{math.MaxInt64 / 512, 512, 511, math.MaxInt64/512*512 + 511, true},
		{math.MaxInt64 / 512, 512, 512, 0, false},
		{1, math.MaxInt64, 0, math.MaxInt64, true},
		{1, math.MaxInt64, 1, 0, false},
		{2, math.MaxInt64 / 2, 1, math.MaxInt64, true},
		{-1, 512, 0, 0, false},
	} {
		got, ok := mulAdd(tc.n, tc.size, tc.tail)
		if got != tc.want || ok != tc.ok {
			t.Errorf("mulAdd(%d, %d, %d) = %d, %v; want %d, %v", tc.n, tc.size, tc.tail, got, ok, tc.want, tc.ok)
		}
		sat := satMulAdd(tc.n, tc.size, tc.tail)
		if wantSat := map[bool]int64{true: tc.want, false: math.MaxInt64}[tc.ok]; sat != wantSat {
			t.Errorf("satMulAdd(%d, %d, %d) = %d, want %d", tc.n, tc.size, tc.tail, sat, wantSat)
		}
	}
}

func TestParamsOffsets(t *testing.T) {
	p := Params{IBS: 1000, OBS: 4096, Reblock: true, Count: 9999999, CountTail: 3, Skip: 2, SkipTail: 5, Seek: 3, SeekTail: 1}
	if got, ok := p.SkipOffset(); got != 2005 || !ok {
		t.Errorf("SkipOffset() = %d, %v", got, ok)
	}
	if got, ok := p.SeekOffset(); got != 3*4096+1 || !ok {
		t.Errorf("SeekOffset() = %d, %v", got, ok)
	}
	p.Reblock = false // bs=: each read is one write, obs is ibs
	if got, ok := p.SeekOffset(); got != 3001 || !ok {
		t.Errorf("SeekOffset() without reblocking = %d, %v", got, ok)
	}
	if got := p.CountLimit(); got != 9999999003 {
		t.Errorf("CountLimit() = %d", got)
	}
	p.Count = 1 << 60
	if got := p.CountLimit(); got != math.MaxInt64 {
		t.Errorf("CountLimit() for count=1E = %d, want MaxInt64", got)
	}
	p.Count = -1
	if got := p.CountLimit(); got != -1 {
		t.Errorf("CountLimit() without count = %d, want -1", got)
	}
}
