package blockdev

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// zeros is compared against with bytes.Equal, whose assembly (memequal,
// AVX2 on amd64) outruns any portable word loop. Its size trades the cost
// per call (a short p compares only len(p) bytes) against loop overhead;
// 4 KiB stays in L1 next to the data being checked. Never written to.
var zeros [4096]byte

// IsZero reports whether every byte of p is zero. An empty p is all zeros.
// It reads p once, 4 KiB at a time, at memory bandwidth.
func IsZero(p []byte) bool {
	for len(p) >= len(zeros) {
		if !bytes.Equal(p[:len(zeros)], zeros[:]) {
			return false
		}
		p = p[len(zeros):]
	}
	return bytes.Equal(p, zeros[:len(p)])
}

// ZeroPrefixLen returns the number of leading zero bytes of p, as restic's
// restic.ZeroPrefixLen does: len(p) when p is all zeros. blkwrite uses it to
// skip zero runs instead of writing them.
func ZeroPrefixLen(p []byte) int {
	n := 0
	// Skip whole chunks fast, then find the first non-zero byte within the
	// chunk that holds it, a word at a time.
	for len(p) >= len(zeros) && bytes.Equal(p[:len(zeros)], zeros[:]) {
		p = p[len(zeros):]
		n += len(zeros)
	}
	for len(p) >= 8 {
		if w := binary.LittleEndian.Uint64(p); w != 0 {
			return n + bits.TrailingZeros64(w)/8
		}
		p = p[8:]
		n += 8
	}
	for _, c := range p {
		if c != 0 {
			return n
		}
		n++
	}
	return n
}
