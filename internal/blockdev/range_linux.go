package blockdev

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ZeroRange makes length bytes at off of f read as zeros, the cheapest way
// the kernel allows. Contract: after it returns nil, reads of the range
// return zeros (for a regular file, the part of the range below its size:
// ZeroRange never changes the size of f).
//
// For a block device it asks for BLKZEROOUT (WRITE ZEROES or unmap on the
// device; the range must be sector aligned). For a regular file it punches
// a hole (fallocate FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE), which frees
// the blocks. When the kernel refuses either with EOPNOTSUPP, ENOTTY or
// EINVAL (a filesystem without holes, an unaligned range, an old kernel) it
// writes zeros instead, 1 MiB per pwrite from one shared zero buffer. If f
// has O_DIRECT and the range is not aligned to DirectAlign(f), O_DIRECT is
// turned off for those writes and on again afterwards, so f must not be
// used concurrently then. Other errors are returned as they come.
func ZeroRange(f *os.File, off, length int64) error {
	if off < 0 || length < 0 {
		return &os.PathError{Op: "zero range", Path: f.Name(), Err: unix.EINVAL}
	}
	if length == 0 {
		return nil
	}
	blk, err := IsBlockDevice(f)
	if err != nil {
		return err
	}
	if blk {
		err = ZeroOut(f, off, length)
	} else {
		err = PunchHole(f, off, length)
	}
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	if !blk {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if off >= fi.Size() {
			return nil
		}
		length = min(length, fi.Size()-off)
	}
	return writeZeros(f, off, length)
}

// zeroBuf is the buffer writeZeros writes from; never written to. Aligned
// to 4096 so it serves O_DIRECT files too.
var zeroBuf = sync.OnceValue(func() []byte { return AlignedBuffer(1<<20, 4096) })

// writeZeros writes length zero bytes at off with pwrite.
func writeZeros(f *os.File, off, length int64) error {
	if direct, err := IsDirect(f); err != nil {
		return err
	} else if direct {
		a := int64(DirectAlign(f))
		if off%a != 0 || length%a != 0 {
			if err := SetDirect(f, false); err != nil {
				return err
			}
			defer SetDirect(f, true)
		}
	}
	z := zeroBuf()
	for length > 0 {
		n := min(length, int64(len(z)))
		if _, err := f.WriteAt(z[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// PunchHole deallocates length bytes at off of the regular file f, which
// then read as zeros, without changing its size (fallocate
// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE). Errors come back as they are:
// EOPNOTSUPP where the filesystem has no holes.
func PunchHole(f *os.File, off, length int64) error {
	return control(f, "fallocate PUNCH_HOLE", func(fd uintptr) error {
		return unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	})
}

// DropCache asks the kernel to drop the clean page-cache pages of length
// bytes at off of f (posix_fadvise POSIX_FADV_DONTNEED); length 0 means to
// the end of the file. Readers and writers call it on what they have gone
// past, to leave the page cache as they found it instead of evicting
// everyone else's pages (dd's iflag=nocache). Dirty pages are not dropped:
// call Fdatasync first for data just written. Partial pages at either end
// of the range are kept.
func DropCache(f *os.File, off, length int64) error {
	return control(f, "fadvise DONTNEED", func(fd uintptr) error {
		return unix.Fadvise(int(fd), off, length, unix.FADV_DONTNEED)
	})
}

// Fdatasync flushes the data of f, and the metadata needed to read it back,
// to stable storage (fdatasync(2)). For a block device this includes a
// cache flush of the device.
func Fdatasync(f *os.File) error {
	return control(f, "fdatasync", func(fd uintptr) error {
		for {
			if err := unix.Fdatasync(int(fd)); err != unix.EINTR {
				return err
			}
		}
	})
}
