package blockdev

import (
	"fmt"
	"os"
	"unsafe"
)

// FS_IOC_FIEMAP is _IOWR('f', 11, struct fiemap) from linux/fs.h, with the
// 32-byte struct fiemap header; x/sys does not export it.
const ioctlFIEMAP = 0xC020660B

// Flags of FS_IOC_FIEMAP (linux/fiemap.h): FiemapFlagSync is a request
// flag, the others describe an extent.
const (
	FiemapFlagSync = 0x1 // FIEMAP_FLAG_SYNC: write dirty data back first

	FiemapExtentLast          = 0x1    // last extent of the file
	FiemapExtentUnknown       = 0x2    // location not known: Physical is meaningless
	FiemapExtentDelalloc      = 0x4    // delayed allocation; implies Unknown
	FiemapExtentEncoded       = 0x8    // data is compressed or otherwise encoded
	FiemapExtentDataEncrypted = 0x80   // data is encrypted; implies Encoded
	FiemapExtentNotAligned    = 0x100  // offsets are not block aligned
	FiemapExtentDataInline    = 0x200  // data lives in a metadata block
	FiemapExtentDataTail      = 0x400  // several files' tails share a block
	FiemapExtentUnwritten     = 0x800  // allocated but reads as zeros
	FiemapExtentMerged        = 0x1000 // made from several extents by the filesystem
	FiemapExtentShared        = 0x2000 // shared with another file (reflink, snapshot)
)

// FiemapExtent is one extent reported by FS_IOC_FIEMAP: Length bytes of the
// file from offset Logical are stored at byte Physical of the filesystem's
// device, as qualified by Flags (FiemapExtent*).
type FiemapExtent struct {
	Logical, Physical, Length uint64
	Flags                     uint32
}

// fiemapHeader and fiemapExtent are struct fiemap and struct
// fiemap_extent: 32 and 56 bytes, all fields naturally aligned.
type fiemapHeader struct {
	start, length                  uint64
	flags, mapped, count, reserved uint32
}

type fiemapExtent struct {
	logical, physical, length uint64
	reserved64                [2]uint64
	flags                     uint32
	reserved                  [3]uint32
}

// Fiemap fills ext with the first extents of f that overlap length bytes
// from start, in ascending order of Logical, and returns how many it filled
// (FS_IOC_FIEMAP, with request flags such as FiemapFlagSync). Fewer than
// len(ext), or a last one flagged FiemapExtentLast, means there are no
// more; otherwise ask again from the end of the last one. The first and
// last extents may begin before start or end after start+length.
//
// Filesystems without the ioctl fail with ENOTTY or EOPNOTSUPP. Fiemap
// allocates a buffer for len(ext) extents per call.
func Fiemap(f *os.File, start, length uint64, flags uint32, ext []FiemapExtent) (int, error) {
	if len(ext) == 0 {
		return 0, nil
	}
	const hdr, size = unsafe.Sizeof(fiemapHeader{}), unsafe.Sizeof(fiemapExtent{})
	// []uint64 keeps the buffer 8-byte aligned, as the structs need.
	buf := make([]uint64, (hdr+uintptr(len(ext))*size)/8)
	p := unsafe.Pointer(&buf[0])
	h := (*fiemapHeader)(p)
	h.start, h.length, h.flags, h.count = start, length, flags, uint32(len(ext))
	if err := ioctl(f, "FS_IOC_FIEMAP", ioctlFIEMAP, p); err != nil {
		return 0, err
	}
	n := int(h.mapped)
	if n > len(ext) {
		return 0, &os.PathError{Op: "ioctl FS_IOC_FIEMAP", Path: f.Name(),
			Err: fmt.Errorf("kernel mapped %d extents into room for %d", n, len(ext))}
	}
	raw := unsafe.Slice((*fiemapExtent)(unsafe.Add(p, hdr)), n)
	for i, e := range raw {
		ext[i] = FiemapExtent{Logical: e.logical, Physical: e.physical, Length: e.length, Flags: e.flags}
	}
	return n, nil
}
