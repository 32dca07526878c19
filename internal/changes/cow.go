package changes

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/blkpipe/blkpipe/internal/blockdev"
)

// The persistent exception store of dm-snapshot (Linux
// drivers/md/dm-snap-persistent.c). Chunk 0 holds the header: le32 magic,
// valid, version and chunk size in 512-byte sectors. Metadata area k is
// the chunk at 1 + k*(e+1), where e = chunk bytes / 16: e exceptions of
// {le64 origin chunk, le64 COW chunk}, followed by the e data chunks they
// point into. A COW chunk of 0 (the header's place) ends the table; a
// full area goes on in the next one, which the kernel zeroes before it
// commits the last exception of this one.
const (
	cowMagic   = 0x70416e53 // SNAP_MAGIC
	cowVersion = 1          // SNAPSHOT_DISK_VERSION
	cowHeader  = 16
	cowEntry   = 16
	// maxCOWChunk bounds the chunk size ParseCOW accepts, and so its
	// buffer; LVM's snapshot chunks are 4 KiB to 512 KiB.
	maxCOWChunk = 1 << 20
)

// COW is the change list in the exception store of a classic (dm-snapshot,
// lvcreate -s without a thin pool) snapshot: every chunk of the origin
// written since the snapshot was taken has been copied into the store
// first, so the chunks the store lists are a superset of what changed.
type COW struct {
	ChunkSize int64 // bytes
	Changed   List  // origin byte ranges, whole chunks
}

// ParseCOW reads the exception store r, the snapshot's COW device (for LVM
// /dev/mapper/VG-SNAP-cow), reading whole chunks at chunk-aligned offsets
// into buffers aligned for O_DIRECT. Read it after the writes it must
// cover: to copy the origin as of a newer snapshot, create that one first;
// each write to the origin completes only after its exception is
// committed.
//
// An invalidated snapshot (valid 0: it overflowed, or an I/O error
// dropped it) gives an error matching ErrNoChangeList, as does a chunk
// size over 1 MiB. A bad magic or version, a COW chunk pointing at
// metadata, an origin chunk past 8 EiB or a store that ends before its
// table does are errors too.
func ParseCOW(r io.ReaderAt) (*COW, error) {
	hdr := blockdev.AlignedBuffer(4096, 4096)
	n, err := r.ReadAt(hdr, 0)
	if n < cowHeader {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	magic := binary.LittleEndian.Uint32(hdr)
	valid := binary.LittleEndian.Uint32(hdr[4:])
	version := binary.LittleEndian.Uint32(hdr[8:])
	sectors := binary.LittleEndian.Uint32(hdr[12:])
	switch {
	case magic != cowMagic:
		return nil, fmt.Errorf("not a snapshot exception store: magic %#x, want %#x", magic, cowMagic)
	case valid == 0:
		return nil, fmt.Errorf("%w: snapshot overflowed: its change list is lost", ErrNoChangeList)
	case version != cowVersion:
		return nil, fmt.Errorf("snapshot exception store version %d, want %d", version, cowVersion)
	case sectors == 0 || sectors&(sectors-1) != 0:
		return nil, fmt.Errorf("snapshot chunk size %d sectors is not a power of two", sectors)
	case sectors > maxCOWChunk/512:
		return nil, fmt.Errorf("%w: snapshot chunk size %d KiB is over %d KiB", ErrNoChangeList, sectors/2, maxCOWChunk>>10)
	}
	cs := int64(sectors) * 512
	per := uint64(cs / cowEntry) // exceptions per area
	area := blockdev.AlignedBuffer(int(cs), 4096)
	var rs []Range
	for k := uint64(0); ; k++ {
		loc := 1 + k*(per+1)
		if loc > math.MaxInt64/uint64(cs) {
			return nil, fmt.Errorf("snapshot metadata area %d lies past 8 EiB", k)
		}
		off := int64(loc) * cs
		if n, err := r.ReadAt(area, off); n < len(area) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read snapshot metadata area %d at offset %d: %w", k, off, err)
		}
		for i := uint64(0); i < per; i++ {
			e := area[i*cowEntry:]
			old, cow := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:])
			if cow == 0 {
				return &COW{ChunkSize: cs, Changed: Normalize(rs)}, nil
			}
			if (cow-1)%(per+1) == 0 {
				return nil, fmt.Errorf("snapshot exception %d of area %d points at metadata chunk %d", i, k, cow)
			}
			if old >= uint64(math.MaxInt64/cs) {
				return nil, fmt.Errorf("snapshot exception %d of area %d: origin chunk %d lies past 8 EiB", i, k, old)
			}
			rs = append(rs, Range{int64(old) * cs, cs})
		}
	}
}
