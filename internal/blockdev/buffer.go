package blockdev

import "unsafe"

// AlignedBuffer returns a slice with len and cap equal to size whose first
// byte is aligned to align bytes, as O_DIRECT needs for its buffers. align
// must be a power of two (it panics otherwise); size need not be a multiple
// of align. It over-allocates by align-1 bytes and slices, so the memory is
// ordinary garbage-collected memory, zeroed like any new slice.
func AlignedBuffer(size, align int) []byte {
	if align <= 0 || align&(align-1) != 0 {
		panic("blockdev: AlignedBuffer alignment is not a power of two")
	}
	if size < 0 {
		panic("blockdev: AlignedBuffer size is negative")
	}
	if size == 0 {
		return []byte{}
	}
	buf := make([]byte, size+align-1)
	off := 0
	if rem := int(uintptr(unsafe.Pointer(&buf[0])) & uintptr(align-1)); rem != 0 {
		off = align - rem
	}
	// Cap the slice at size so an append cannot silently reallocate into
	// unaligned memory while the caller keeps using the old header.
	return buf[off : off+size : off+size]
}

// IsAligned reports whether the first byte of p is aligned to align bytes
// (a power of two). An empty slice is aligned only if it has capacity and
// its backing array is aligned; a nil slice is not aligned.
func IsAligned(p []byte, align int) bool {
	if cap(p) == 0 {
		return false
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))&uintptr(align-1) == 0
}
