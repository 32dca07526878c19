package sums_test

import (
	"testing"

	"github.com/blkpipe/blkpipe/internal/sums"
)

// sanityBuffer is xxHash's test input (XSUM_fillTestBuffer in xxHash's
// cli/xsum_sanity_check.c): byte i is the top byte of 2654435761 times
// 11400714785074694797 to the power i, modulo 2^64.
func sanityBuffer(n int) []byte {
	const prime32, prime64 = 2654435761, 11400714785074694797
	b := make([]byte, n)
	gen := uint64(prime32)
	for i := range b {
		b[i] = byte(gen >> 56)
		gen *= prime64
	}
	return b
}

// TestSumKnownAnswers checks Sum against the published XXH3-64 vectors
// with seed 0: the seed-0 rows of XSUM_XXH3_testdata in xxHash's
// cli/xsum_sanity_check.c (xxhsum's built-in self-test), which cover each
// of XXH3's length classes. They come from outside this code, so a
// digest that changed (another library, another seed) fails here even
// though every round trip through sums would still agree with itself.
func TestSumKnownAnswers(t *testing.T) {
	tests := []struct {
		len  int
		want uint64
	}{
		{0, 0x2D06800538D394C2},    // empty input
		{1, 0xC44BDFF4074EECDB},    // 1-3
		{6, 0x27B56A84CD2D7325},    // 4-8
		{12, 0xA713DAF0DFBB77E7},   // 9-16
		{24, 0xA3FE70BF9D3510EB},   // 17-32
		{48, 0x397DA259ECBA1F11},   // 33-64
		{80, 0xBCDEFBBB2C47C90A},   // 65-96
		{195, 0xCD94217EE362EC3A},  // 129-240
		{403, 0xCDEB804D65C6DEA4},  // one block, last stripe overlapping
		{512, 0x617E49599013CB6B},  // one block, ending at a stripe boundary
		{2048, 0xDD59E2C3A5F038E0}, // two blocks, ending at a block boundary
		{2099, 0xC6B9D9B3FC9AC765}, // two blocks and part of a third
		{2240, 0x6E73A90539CF2948}, // three blocks, ending at a stripe boundary
		{2367, 0xCB37AEB9E5D361ED}, // three blocks, last stripe overlapping
	}
	buf := sanityBuffer(2367)
	for _, tt := range tests {
		if got := sums.Sum(buf[:tt.len]); got != tt.want {
			t.Errorf("Sum(%d bytes of xxHash's sanity buffer) = %#016x, want %#016x", tt.len, got, tt.want)
		}
	}
}
