package sums

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WriteSum feeds the digest v of the next block, computed elsewhere (a
// sender patching the sums it kept), in place of the block's bytes; the
// last block counts as short. It may not follow a Write that left a
// partial block.
func (sw *Writer) WriteSum(v uint64) error {
	if sw.err != nil {
		return sw.err
	}
	n := min(int64(sw.bs), sw.size-sw.fed)
	switch {
	case len(sw.block) > 0:
		sw.err = fmt.Errorf("sums: WriteSum after a partial block of %d bytes", len(sw.block))
	case n <= 0:
		sw.err = fmt.Errorf("%w: more digests than the %d bytes declared have blocks", ErrSize, sw.size)
	}
	if sw.err != nil {
		return sw.err
	}
	sw.fed += n
	binary.LittleEndian.PutUint64(sw.ent[:], v)
	sw.put(sw.ent[:])
	sw.count++
	return sw.err
}

// Table reads the digests of a sums stream kept in a file at random
// positions, for a sender that revisits a few blocks of a large device.
// OpenTable checks the header and the length; the trailer's CRC is
// checked only by a full pass (Reader, or CopyPatched). A Table is safe
// for concurrent use when its ReaderAt is.
type Table struct {
	r io.ReaderAt
	h Header
	n int64
}

// OpenTable reads the header of the sums stream in r, which is length
// bytes long, and checks that it holds exactly its blocks' digests.
func OpenTable(r io.ReaderAt, length int64) (*Table, error) {
	sr, err := NewReader(io.NewSectionReader(r, 0, HeaderLen))
	if err != nil {
		return nil, err
	}
	h := sr.Header()
	n := Blocks(h.Size, h.BlockSize)
	if want := HeaderLen + n*DigestLen + TrailerLen; length != want {
		return nil, fmt.Errorf("%w: %d bytes, a %d-byte device in %d-byte blocks takes %d", ErrChecksum, length, h.Size, h.BlockSize, want)
	}
	return &Table{r: r, h: h, n: n}, nil
}

// Header returns the table's header.
func (t *Table) Header() Header { return t.h }

// Get fills dst with the digests of blocks first, first+1, ...; it fails
// if they run past the last block.
func (t *Table) Get(first int64, dst []uint64) error {
	if first < 0 || first+int64(len(dst)) > t.n {
		return fmt.Errorf("sums: blocks [%d, %d) of %d", first, first+int64(len(dst)), t.n)
	}
	b := make([]byte, len(dst)*DigestLen)
	if _, err := t.r.ReadAt(b, HeaderLen+first*DigestLen); err != nil {
		return fmt.Errorf("read block sums %d to %d: %w", first, first+int64(len(dst)), err)
	}
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(b[i*DigestLen:])
	}
	return nil
}

// CopyPatched writes to w the table with the digests in patch (block
// index → digest) replaced, reading the whole table and checking its
// trailer as it goes: a damaged table fails here.
func (t *Table) CopyPatched(w io.Writer, patch map[int64]uint64) error {
	sr, err := NewReader(io.NewSectionReader(t.r, 0, HeaderLen+t.n*DigestLen+TrailerLen))
	if err != nil {
		return err
	}
	sw, err := NewWriter(w, t.h.BlockSize, t.h.Size)
	if err != nil {
		return err
	}
	for i := int64(0); ; i++ {
		v, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if p, ok := patch[i]; ok {
			v = p
		}
		if err := sw.WriteSum(v); err != nil {
			return err
		}
	}
	return sw.Close()
}
