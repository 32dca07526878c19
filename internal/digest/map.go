package digest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// MapMagic is the first 8 bytes of a leaf map.
const MapMagic = "\x89BLKM\r\n\x1a"

// Map layout (docs/FORMAT.md, "Leaf maps").
const (
	MapVersion    = 1
	MapHeaderLen  = 80
	MapTrailerLen = 8
	mapAlgBLAKE3  = 1
	// MaxMapSize caps the source size a map may declare (1 PiB: a map of
	// 512 GiB), checked before anything is allocated.
	MaxMapSize = 1 << 50
)

// ErrMap means a leaf map is malformed, damaged, truncated, or of the
// wrong size. Typically this indicates wrong or corrupted input.
var ErrMap = errors.New("invalid leaf map")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Map is a source's leaf map: its size, its BLAKE3-256 root, and the
// chaining values of its LeafSize leaves.
type Map struct {
	Size   int64
	Root   [Size]byte
	Leaves []CV
}

// MapLen returns the length of the map of a source of size bytes.
func MapLen(size int64) int64 {
	return MapHeaderLen + NumLeaves(size)*Size + MapTrailerLen
}

// Marshal returns the map's bytes. It fails if the leaves are not
// NumLeaves(Size) or the size is out of range; it does not check Root.
func (m *Map) Marshal() ([]byte, error) {
	if m.Size < 0 || m.Size > MaxMapSize {
		return nil, fmt.Errorf("digest: map of a %d-byte source: size not in [0, %d]", m.Size, int64(MaxMapSize))
	}
	n := NumLeaves(m.Size)
	if int64(len(m.Leaves)) != n {
		return nil, fmt.Errorf("digest: map of a %d-byte source needs %d leaves, has %d", m.Size, n, len(m.Leaves))
	}
	b := make([]byte, MapHeaderLen, MapLen(m.Size))
	le := binary.LittleEndian
	copy(b, MapMagic)
	le.PutUint16(b[8:], MapVersion)
	le.PutUint16(b[10:], MapHeaderLen)
	b[12] = mapAlgBLAKE3
	le.PutUint32(b[16:], LeafSize)
	le.PutUint64(b[24:], uint64(m.Size))
	copy(b[32:64], m.Root[:])
	le.PutUint64(b[64:], uint64(n))
	le.PutUint32(b[76:], crc32.Checksum(b[:76], castagnoli))
	for _, c := range m.Leaves {
		b = append(b, c[:]...)
	}
	b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return append(b, "MEND"...), nil
}

func mapErr(format string, args ...any) error {
	return fmt.Errorf("digest: %w: %s", ErrMap, fmt.Sprintf(format, args...))
}

// Unmarshal decodes a leaf map, checking the header (magic, version,
// lengths, algorithm, leaf size, source size, CRC) before it allocates,
// then that b is exactly as long as the header says, the trailer's CRC,
// and, when the source has more than one leaf, that the leaves hash to
// the root. Every failure wraps ErrMap.
func Unmarshal(b []byte) (*Map, error) {
	le := binary.LittleEndian
	switch {
	case len(b) < MapHeaderLen:
		return nil, mapErr("truncated: %d bytes, shorter than the %d-byte header", len(b), MapHeaderLen)
	case string(b[:8]) != MapMagic:
		return nil, mapErr("bad magic %x", b[:8])
	case le.Uint16(b[8:]) != MapVersion:
		return nil, mapErr("version %d, this reader reads %d", le.Uint16(b[8:]), MapVersion)
	case le.Uint16(b[10:]) != MapHeaderLen:
		return nil, mapErr("header length %d, want %d", le.Uint16(b[10:]), MapHeaderLen)
	}
	if got, want := crc32.Checksum(b[:76], castagnoli), le.Uint32(b[76:]); got != want {
		return nil, mapErr("header checksum: computed %08x, header says %08x", got, want)
	}
	size := int64(le.Uint64(b[24:]))
	n := int64(le.Uint64(b[64:]))
	switch {
	case b[12] != mapAlgBLAKE3:
		return nil, mapErr("unknown digest algorithm %d", b[12])
	case b[13] != 0 || b[14] != 0 || b[15] != 0 || le.Uint32(b[20:]) != 0 || le.Uint32(b[72:]) != 0:
		return nil, mapErr("nonzero reserved bytes")
	case le.Uint32(b[16:]) != LeafSize:
		return nil, mapErr("leaf size %d, want %d", le.Uint32(b[16:]), LeafSize)
	case size < 0 || size > MaxMapSize:
		return nil, mapErr("source size %d not in [0, %d]", size, int64(MaxMapSize))
	case n != NumLeaves(size):
		return nil, mapErr("%d leaves for a %d-byte source, want %d", n, size, NumLeaves(size))
	case int64(len(b)) != MapLen(size):
		what := "truncated"
		if int64(len(b)) > MapLen(size) {
			what = "too long"
		}
		return nil, mapErr("%s: %d bytes, a map of %d leaves is %d", what, len(b), n, MapLen(size))
	}
	t := b[len(b)-MapTrailerLen:]
	if string(t[4:]) != "MEND" {
		return nil, mapErr("bad trailer tag %q", t[4:])
	}
	if got, want := crc32.Checksum(b[:len(b)-MapTrailerLen], castagnoli), le.Uint32(t); got != want {
		return nil, mapErr("checksum: computed %08x, trailer says %08x", got, want)
	}
	m := &Map{Size: size, Leaves: make([]CV, n)}
	copy(m.Root[:], b[32:64])
	for i := range m.Leaves {
		copy(m.Leaves[i][:], b[MapHeaderLen+i*Size:])
	}
	if n > 1 {
		root, err := Root(size, m.Leaves)
		if err != nil {
			return nil, fmt.Errorf("digest: %w: %v", ErrMap, err)
		}
		if root != m.Root {
			return nil, mapErr("leaves hash to %x, header says %x", root, m.Root)
		}
	}
	return m, nil
}

// Tree returns the map's Tree, which knows the root of a one-leaf source
// from the map.
func (m *Map) Tree() (*Tree, error) {
	t, err := NewTree(m.Size, m.Leaves)
	if err != nil {
		return nil, err
	}
	if t.Len() == 1 {
		r := m.Root
		t.one = &r
	}
	return t, nil
}
