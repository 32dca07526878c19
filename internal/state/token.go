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
}

// String formats the token as STREAMID:OFFSET:SIZE:SAMPLE (hex id, decimal
// numbers, 16 hex digits), or STREAMID:OFFSET:SIZE without a sample.
func (t Token) String() string {
	if t.HasSample {
		return fmt.Sprintf("%x:%d:%d:%016x", t.ID, t.Offset, t.Size, t.Sample)
	}
	return fmt.Sprintf("%x:%d:%d", t.ID, t.Offset, t.Size)
}

// ParseToken parses what Token.String prints.
func ParseToken(s string) (Token, error) {
	var t Token
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 || len(parts[0]) != 32 {
		return t, errors.New("want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point")
	}
	if len(parts) == 4 {
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
