package frame

import (
	"encoding/binary"
	"math/bits"
)

// lz4Encoder compresses blocks into the LZ4 block format with the method
// of the reference LZ4_compress_fast at acceleration 1 (what lz4 -1 runs):
// a 4096-entry hash table of 5-byte sequences, one candidate per
// position, and a search step that grows over incompressible input.
// pierrec/lz4's CompressBlock, which the Writer used before, keeps a
// 128 KiB table with a bitmap of its live entries, which no longer fits
// the first-level cache, and spent half as long again per byte as lz4 -1.
//
// The table holds positions in a running coordinate: each block starts
// lz4Window past the end of the one before, so entries left by earlier
// blocks are farther back than a match may reach and need no clearing.
type lz4Encoder struct {
	table [lz4TableSize]uint32
	base  uint32 // the running position of the current block's first byte
}

const (
	lz4TableBits = 12
	lz4TableSize = 1 << lz4TableBits
	lz4Window    = 1 << 16 // a match's offset is below it
	lz4MinMatch  = 4
	// The format ends every block with at least 5 literals, and the last
	// match starts at least 12 bytes before the end.
	lz4LastLiterals = 5
	lz4MFLimit      = 12
	// lz4SkipTrigger: after 1<<lz4SkipTrigger positions without a match
	// the search step grows by one.
	lz4SkipTrigger = 6
	// lz4MaxBase bounds the running coordinate: past it the table is
	// cleared and positions start again (every 2 GiB of input).
	lz4MaxBase = 1 << 31
)

func lz4Hash(seq uint64) uint32 {
	const prime5bytes = 889523592379
	return uint32(((seq << 24) * prime5bytes) >> (64 - lz4TableBits))
}

// compress writes the LZ4 block of src to dst and returns its length, or 0
// when it would not fit in dst: given a dst shorter than src, 0 means the
// block does not compress.
func (e *lz4Encoder) compress(src, dst []byte) int {
	if uint64(e.base)+uint64(len(src)) >= lz4MaxBase || e.base == 0 {
		e.table = [lz4TableSize]uint32{}
		e.base = lz4Window // entries of 0 are out of reach
	}
	base := e.base
	e.base += uint32(len(src)) + lz4Window
	n := len(src)
	di, anchor := 0, 0
	if n >= lz4MFLimit+1 {
		di, anchor = e.sequences(src, dst, base)
		if di < 0 {
			return 0
		}
	}
	// The last literals.
	lit := n - anchor
	if di+1+(lit+255-15)/255+lit > len(dst) {
		return 0
	}
	di = lz4PutLiteralLen(dst, di, lit, 0)
	di += copy(dst[di:], src[anchor:])
	return di
}

// sequences encodes src's sequences up to its last literals, which start
// at anchor; di is the length written, or -1 when dst is too short.
func (e *lz4Encoder) sequences(src, dst []byte, base uint32) (di, anchor int) {
	n := len(src)
	mfLimit := n - lz4MFLimit         // a match starts at or before it
	matchLimit := n - lz4LastLiterals // and ends at or before this
	t := &e.table
	si := 0
	t[lz4Hash(load64(src, 0))] = base
	si++
	fwdSeq := load64(src, si)
	for {
		// Find a match: the candidate of each position's hash,
		// stepping faster the longer none is found.
		var ref int
		step, tries := 1, 1<<lz4SkipTrigger
		fwd := si
		for {
			seq := fwdSeq
			si = fwd
			fwd += step
			step = tries >> lz4SkipTrigger
			tries++
			if fwd > mfLimit {
				return di, anchor
			}
			h := lz4Hash(seq)
			cand := t[h]
			fwdSeq = load64(src, fwd)
			cur := base + uint32(si)
			t[h] = cur
			if cur-cand < lz4Window && load32(src, int(cand-base)) == uint32(seq) {
				ref = int(cand - base)
				break
			}
		}
		// Extend the match backwards over the literals.
		for si > anchor && ref > 0 && src[si-1] == src[ref-1] {
			si--
			ref--
		}
		for {
			// The sequence: literals since anchor, then the match at
			// si, ref.
			mlen := lz4MatchLen(src, si+lz4MinMatch, ref+lz4MinMatch, matchLimit)
			lit := si - anchor
			if di+1+(lit+255-15)/255+lit+2+(mlen+255-15)/255 > len(dst) {
				return -1, 0
			}
			di = lz4PutLiteralLen(dst, di, lit, mlen)
			di += copy(dst[di:], src[anchor:si])
			binary.LittleEndian.PutUint16(dst[di:], uint16(si-ref))
			di += 2
			if mlen >= 15 {
				di = lz4PutLen(dst, di, mlen-15)
			}
			si += lz4MinMatch + mlen
			anchor = si
			if si > mfLimit {
				return di, anchor
			}
			// Index the position two back, then try the match at si
			// straight away.
			t[lz4Hash(load64(src, si-2))] = base + uint32(si-2)
			seq := load64(src, si)
			h := lz4Hash(seq)
			cand := t[h]
			cur := base + uint32(si)
			t[h] = cur
			if cur-cand < lz4Window && load32(src, int(cand-base)) == uint32(seq) {
				ref = int(cand - base)
				continue
			}
			si++
			fwdSeq = load64(src, si)
			break
		}
	}
}

// lz4PutLiteralLen writes a sequence's token, for lit literals and a match
// of mlen+4 bytes (mlen's extra bytes follow the offset, not here), and
// the literal length's extra bytes.
func lz4PutLiteralLen(dst []byte, di, lit, mlen int) int {
	tok := byte(min(mlen, 15))
	if lit < 15 {
		dst[di] = tok | byte(lit)<<4
		return di + 1
	}
	dst[di] = tok | 0xF0
	return lz4PutLen(dst, di+1, lit-15)
}

// lz4PutLen writes a length's extra bytes: 255s, then the rest.
func lz4PutLen(dst []byte, di, n int) int {
	for n >= 255 {
		dst[di] = 255
		di++
		n -= 255
	}
	dst[di] = byte(n)
	return di + 1
}

// lz4MatchLen returns how many bytes src[a:] and src[b:] (b < a) have in
// common before limit.
func lz4MatchLen(src []byte, a, b, limit int) int {
	start := a
	for a+8 <= limit {
		if x := load64(src, a) ^ load64(src, b); x != 0 {
			return a + bits.TrailingZeros64(x)>>3 - start
		}
		a, b = a+8, b+8
	}
	for a < limit && src[a] == src[b] {
		a, b = a+1, b+1
	}
	return a - start
}

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }
func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
