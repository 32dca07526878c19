package ddcopy

import (
	"math"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
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

func TestLcmFit(t *testing.T) {
	for _, tc := range []struct {
		a, b, limit, want int
		ok                bool
	}{
		{512, 4096, 1 << 20, 4096, true},
		{1000, 4096, 1 << 20, 512000, true},
		{1000001, 4096, 64 << 20, 0, false},
		{999999, 1000000, 64 << 20, 0, false},
		{math.MaxInt / 2, math.MaxInt/2 - 1, math.MaxInt, 0, false}, // overflows
	} {
		got, ok := lcmFit(tc.a, tc.b, tc.limit)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lcmFit(%d, %d, %d) = %d, %v; want %d, %v", tc.a, tc.b, tc.limit, got, ok, tc.want, tc.ok)
		}
	}
}

// TestLayout: ordinary block sizes keep their chunks; huge and awkward
// ones get buffers about their size, never a multiple of terabytes.
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          Params
		chunk, buf int // expected, or 0 for "at most maxBuf"
		maxBuf     int
		buffers    int
		stream     bool
	}{
		{name: "default", p: Params{IBS: 512, OBS: 512, Reblock: true}, chunk: 4 << 20, buf: 4 << 20, buffers: 6},
		{name: "bs=4M", p: Params{IBS: 4 << 20, OBS: 4 << 20}, chunk: 8 << 20, buf: 8 << 20, buffers: 6},
		{name: "bs=1G", p: Params{IBS: 1 << 30, OBS: 1 << 30}, chunk: 1 << 30, buf: 1 << 30, buffers: 2},
		{name: "bs=1G sync", p: Params{IBS: 1 << 30, OBS: 1 << 30, Sync: true}, chunk: 1 << 30, buf: 2 << 30, buffers: 2},
		{name: "bs=1000001", p: Params{IBS: 1000001, OBS: 1000001}, maxBuf: 8 << 20, buffers: 6},
		{name: "ibs=999999 obs=1000000", p: Params{IBS: 999999, OBS: 1000000, Reblock: true}, maxBuf: 8 << 20, buffers: 6},
		{name: "ibs=999999 obs=1000000 sparse", p: Params{IBS: 999999, OBS: 1000000, Reblock: true, Sparse: true}, maxBuf: 8 << 20, buffers: 6, stream: true},
		{name: "bs=1E", p: Params{IBS: 1 << 60, OBS: 1 << 60}, chunk: 1 << 60, buf: 1 << 60, buffers: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Copier{P: tc.p, ChunkSize: 4 << 20, Buffers: 6, Readers: 4}
			c.layout()
			if tc.chunk != 0 && c.chunk != tc.chunk || tc.buf != 0 && c.bufSize != tc.buf || tc.maxBuf != 0 && c.bufSize > tc.maxBuf {
				t.Errorf("chunk %d, buffer %d; want %d, %d (at most %d)", c.chunk, c.bufSize, tc.chunk, tc.buf, tc.maxBuf)
			}
			if c.chunk%c.ibs != 0 || c.Buffers != tc.buffers || c.stream != tc.stream {
				t.Errorf("chunk %d (ibs %d), %d buffers, stream %v; want %d buffers, stream %v", c.chunk, c.ibs, c.Buffers, c.stream, tc.buffers, tc.stream)
			}
			if c.streamUnit > 1 && c.chunk < c.streamUnit+c.ibs {
				t.Errorf("chunk %d cannot hold a stream unit %d and a record %d", c.chunk, c.streamUnit, c.ibs)
			}
		})
	}
}

func TestCheckMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		want string
	}{
		{"default", Params{IBS: 512, OBS: 512, Reblock: true}, ""},
		{"bs=1E", Params{IBS: 1 << 60, OBS: 1 << 60}, "memory exhausted by input buffer of size 1152921504606846976 bytes (1.0 EiB)"},
		{"largest bs", Params{IBS: math.MaxInt64 - 1, OBS: math.MaxInt64 - 1}, "memory exhausted by input buffer of size 9223372036854775806 bytes (8.0 EiB)"},
		{"obs=1E", Params{IBS: 512, OBS: 1 << 60, Reblock: true}, "memory exhausted by output buffer of size 1152921504606846976 bytes (1.0 EiB)"},
		{"ibs=1E obs=1E", Params{IBS: 1 << 60, OBS: 1 << 60, Reblock: true}, "memory exhausted by input buffer of size 1152921504606846976 bytes (1.0 EiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckMemory(tc.p, Input{}, Output{})
			if got := ""; err != nil {
				got = err.Error()
				if got != tc.want {
					t.Errorf("CheckMemory: %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("CheckMemory: nil, want %q", tc.want)
			}
		})
	}
}

func TestMapBuffersAlignment(t *testing.T) {
	for _, align := range []int{1, 4096, 65536} {
		bufs, release, err := mapBuffers(3, 100000, align)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs {
			if len(b) != 100000 || cap(b) != 100000 || align > 1 && !blockdev.IsAligned(b, align) {
				t.Errorf("align %d: buffer len %d cap %d aligned %v", align, len(b), cap(b), blockdev.IsAligned(b, align))
			}
			b[0], b[len(b)-1] = 1, 1
		}
		release()
	}
	if _, _, err := mapBuffers(1, math.MaxInt, 4096); err == nil {
		t.Error("mapped MaxInt bytes")
	}
}
