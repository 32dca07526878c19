package state

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/zeebo/xxh3"
)

// Token is a resume point: which stream, how far it durably got, the
// source size, and a sample of the bytes the target holds before Offset
// (see Sample), as blkwrite --resume-point prints it and blkcat
// --resume takes it.
type Token struct {
	ID        [16]byte
	Offset    int64
	Size      int64
	Sample    uint64
	HasSample bool // tokens from before the sample have none

	// Changed is set for a changed-block delta (blkcat --changed-from):
	// Offset is then where the last durably applied record ends, BaseRoot
	// the BLAKE3 root of the base the delta was made against, and Applied
	// the Applied sum of every 4 KiB block the delta wrote before Offset.
	// Such a token always has a sample.
	Changed  bool
	BaseRoot [32]byte
	Applied  uint64
}

// String formats the token as STREAMID:OFFSET:SIZE:SAMPLE (hex id, decimal
// numbers, 16 hex digits), or STREAMID:OFFSET:SIZE without a sample; a
// changed-block delta's token adds :BASEROOT:APPLIED (64 and 16 hex digits).
func (t Token) String() string {
	if t.Changed {
		return fmt.Sprintf("%x:%d:%d:%016x:%x:%016x", t.ID, t.Offset, t.Size, t.Sample, t.BaseRoot, t.Applied)
	}
	if t.HasSample {
		return fmt.Sprintf("%x:%d:%d:%016x", t.ID, t.Offset, t.Size, t.Sample)
	}
	return fmt.Sprintf("%x:%d:%d", t.ID, t.Offset, t.Size)
}

// ParseToken parses what Token.String prints.
func ParseToken(s string) (Token, error) {
	var t Token
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) == 5 || len(parts) > 6 || len(parts[0]) != 32 {
		return t, errors.New("want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point")
	}
	if len(parts) == 6 {
		if len(parts[4]) != 64 {
			return t, errors.New("base root is not 64 hex digits")
		}
		if _, err := hex.Decode(t.BaseRoot[:], []byte(parts[4])); err != nil {
			return t, errors.New("base root is not 64 hex digits")
		}
		v, err := strconv.ParseUint(parts[5], 16, 64)
		if err != nil || len(parts[5]) != 16 {
			return t, errors.New("applied sum is not 16 hex digits")
		}
		t.Changed, t.Applied = true, v
	}
	if len(parts) >= 4 {
		v, err := strconv.ParseUint(parts[3], 16, 64)
		if err != nil || len(parts[3]) != 16 {
			return t, errors.New("sample is not 16 hex digits")
		}
		t.Sample, t.HasSample = v, true
	}
	if _, err := hex.Decode(t.ID[:], []byte(parts[0])); err != nil {
		return t, errors.New("stream id is not 32 hex digits")
	}
	var err error
	if t.Offset, err = strconv.ParseInt(parts[1], 10, 64); err != nil || t.Offset < 0 {
		return t, errors.New("bad offset")
	}
	if t.Size, err = strconv.ParseInt(parts[2], 10, 64); err != nil || t.Size < t.Offset {
		return t, errors.New("bad size")
	}
	return t, nil
}

// sampleBlocks is how many 4 KiB blocks Sample reads.
const sampleBlocks = 16

// Sample is the XXH3-64 of sampleBlocks 4 KiB-aligned blocks spread
// evenly over r's first n bytes, the first at 0 and none reaching past n
// (fewer, or one short block, when n is small). blkwrite records it with a resume point from the target,
// which holds the source up to n; blkcat --resume takes the same sample of
// SRC and refuses, before sending anything, a resume point that another
// source (of the same size) made. Reads are 4 KiB-aligned, so O_DIRECT
// descriptors serve; 16 reads cost nothing next to a copy.
func Sample(r io.ReaderAt, n int64) (uint64, error) {
	h := xxh3.New()
	buf := blockdev.AlignedBuffer(4096, 4096)
	last := int64(-1)
	for i := int64(0); i < sampleBlocks; i++ {
		var off int64
		if n > 4096 {
			off = (n - 4096) / (sampleBlocks - 1) * i &^ 4095
		}
		if off == last {
			continue
		}
		last = off
		want := min(4096, n-off)
		if want <= 0 {
			break
		}
		k, err := r.ReadAt(buf, off)
		if int64(k) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("sample %d bytes at offset %d: %w", want, off, err)
		}
		h.Write(buf[:want])
	}
	return h.Sum64(), nil
}

// AppliedBlock is the size of the blocks an Applied sum adds up: the
// changed-block delta's 4 KiB block.
const AppliedBlock = 4096

// Applied is the sum (mod 2^64) of XXH3-64 of each 4 KiB block a
// changed-block delta writes, seeded with the block's offset: blkwrite
// adds up the blocks it applied before its resume point, and blkcat
// --changed-from --resume the blocks it would have sent before it, so
// that a resume point made by another snapshot is refused before
// anything is sent. A sum, so that it continues across resumes in any
// split of the records. The zero Applied is the empty sum.
type Applied uint64

// Add adds the blocks of b, which starts at source offset off on a block
// boundary: whole blocks, and a shorter last one at the source's end.
func (a *Applied) Add(off int64, b []byte) {
	for len(b) > 0 {
		n := min(len(b), AppliedBlock)
		*a += Applied(xxh3.HashSeed(b[:n], uint64(off)))
		off, b = off+int64(n), b[n:]
	}
}

var zeroBlock [AppliedBlock]byte

// AddZero adds n zero bytes at off, as Add would.
func (a *Applied) AddZero(off, n int64) {
	for n > 0 {
		k := min(n, AppliedBlock)
		*a += Applied(xxh3.HashSeed(zeroBlock[:k], uint64(off)))
		off, n = off+k, n-k
	}
}
