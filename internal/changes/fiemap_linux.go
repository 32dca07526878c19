package changes

import (
	"errors"
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"golang.org/x/sys/unix"
)

// fiemapBatch is how many extents one FS_IOC_FIEMAP call asks for (56
// bytes each): memory stays bounded however fragmented the files are.
const fiemapBatch = 512

// Flags whose extents have no address Compare could trust at all.
const unmappable = blockdev.FiemapExtentUnknown | blockdev.FiemapExtentDelalloc |
	blockdev.FiemapExtentDataInline | blockdev.FiemapExtentDataTail

// Flags under which bytes are not stored linearly from Physical, so two
// extents are the same data only if they are the same extent.
const opaque = blockdev.FiemapExtentEncoded | blockdev.FiemapExtentDataEncrypted |
	blockdev.FiemapExtentNotAligned

// Flags that say nothing about the data (where the list ends, how the
// filesystem assembled the extent, who else shares it).
const cosmetic = blockdev.FiemapExtentLast | blockdev.FiemapExtentMerged | blockdev.FiemapExtentShared

// Compare returns the byte ranges of next that may differ from prev, two
// files sharing extents on one filesystem: a reflink clone (XFS with
// reflink=1, btrfs, cp --reflink) taken at the last verified copy and a
// fresh clone of the live image, or the same image file in two btrfs
// snapshots. It reads both files' extent maps (FS_IOC_FIEMAP with
// FIEMAP_FLAG_SYNC, so dirty data is written back first), never their data.
//
// A byte is unchanged only when it is a hole in both files, or when both
// map it to the same physical address in extents of the same kind (both
// written or both unwritten); extents stored encoded (compressed,
// encrypted) must be the very same extent. Everything else is listed,
// including bytes of next past the end of prev. The list lies within
// [0, size of next) and is a superset of what differs, at the
// filesystem's block granularity.
//
// The error matches ErrNoChangeList when the filesystem has no FIEMAP
// (ENOTTY, EOPNOTSUPP) or an extent's address means nothing (unknown,
// delayed allocation, inline, tail-packed, or not aligned and not the
// same extent in both). Neither file may be written during the call.
func Compare(prev, next *os.File) (List, error) {
	ps, err := fileSize(prev)
	if err != nil {
		return nil, err
	}
	ns, err := fileSize(next)
	if err != nil {
		return nil, err
	}
	a := &extentReader{f: prev, size: ps, buf: make([]blockdev.FiemapExtent, fiemapBatch)}
	b := &extentReader{f: next, size: ns, buf: make([]blockdev.FiemapExtent, fiemapBatch)}
	var l List
	for pos := int64(0); pos < ns; {
		if pos >= ps {
			// next grew: prev has nothing to compare with.
			l = l.Append(Range{pos, ns - pos})
			break
		}
		ea, err := a.at(pos)
		if err != nil {
			return nil, err
		}
		eb, err := b.at(pos)
		if err != nil {
			return nil, err
		}
		end := min(ea.end(pos, ps), eb.end(pos, ns))
		same, err := sameData(ea, eb, pos)
		if err != nil {
			return nil, err
		}
		if !same {
			l = l.Append(Range{pos, end - pos})
		}
		pos = end
	}
	return l, nil
}

func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("compare extents of %s: %w: not a regular file", f.Name(), ErrNoChangeList)
	}
	return fi.Size(), nil
}

// segment is what a file holds from some offset on: the extent e, or, if
// hole, a hole up to e.Logical (the next extent) or the end of the file.
type segment struct {
	e    blockdev.FiemapExtent
	hole bool
	name string
}

// end returns where the segment seen at pos ends, at most size.
func (s segment) end(pos, size int64) int64 {
	var e int64
	switch {
	case s.hole && s.e.Length == 0: // no more extents
		e = size
	case s.hole:
		e = int64(s.e.Logical)
	default:
		e = int64(s.e.Logical + s.e.Length)
	}
	return max(min(e, size), pos+1)
}

// sameData reports whether a and b, both seen at pos, hold the same bytes
// there by the rules of Compare.
func sameData(a, b segment, pos int64) (bool, error) {
	for _, s := range []segment{a, b} {
		if !s.hole && s.e.Flags&unmappable != 0 {
			return false, fmt.Errorf("compare extents of %s at offset %d: %w: extent flags %#x give no address",
				s.name, pos, ErrNoChangeList, s.e.Flags)
		}
	}
	switch {
	case a.hole && b.hole:
		return true, nil
	case a.hole || b.hole:
		return false, nil
	}
	fa, fb := a.e.Flags&^cosmetic, b.e.Flags&^cosmetic
	if (fa|fb)&opaque != 0 {
		if fa == fb && a.e.Logical == b.e.Logical && a.e.Physical == b.e.Physical && a.e.Length == b.e.Length {
			return true, nil
		}
		if (fa|fb)&blockdev.FiemapExtentNotAligned != 0 {
			return false, fmt.Errorf("compare extents of %s and %s at offset %d: %w: unaligned extents (flags %#x, %#x) differ",
				a.name, b.name, pos, ErrNoChangeList, a.e.Flags, b.e.Flags)
		}
		return false, nil
	}
	if fa&blockdev.FiemapExtentUnwritten != fb&blockdev.FiemapExtentUnwritten {
		return false, nil
	}
	return a.e.Physical+uint64(pos)-a.e.Logical == b.e.Physical+uint64(pos)-b.e.Logical, nil
}

// extentReader walks the extents of one file in ascending order, a batch
// of FS_IOC_FIEMAP at a time.
type extentReader struct {
	f    *os.File
	size int64
	buf  []blockdev.FiemapExtent
	i, n int
	next uint64 // where the next batch starts
	done bool   // the kernel has no more extents
	last uint64 // end of the last extent seen, to catch disorder
}

// at returns the segment of the file at pos; pos never decreases between
// calls.
func (r *extentReader) at(pos int64) (segment, error) {
	for {
		for ; r.i < r.n; r.i++ {
			e := r.buf[r.i]
			if e.Logical+e.Length > uint64(pos) {
				if e.Logical > uint64(pos) {
					return segment{e: e, hole: true, name: r.f.Name()}, nil
				}
				return segment{e: e, name: r.f.Name()}, nil
			}
		}
		if r.done || r.next >= uint64(r.size) {
			return segment{hole: true, name: r.f.Name()}, nil
		}
		if err := r.fill(); err != nil {
			return segment{}, err
		}
	}
}

func (r *extentReader) fill() error {
	n, err := blockdev.Fiemap(r.f, r.next, uint64(r.size)-r.next, blockdev.FiemapFlagSync, r.buf)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("compare extents: %w: %w", ErrNoChangeList, err)
		}
		return fmt.Errorf("compare extents: %w", err)
	}
	r.i, r.n = 0, n
	for _, e := range r.buf[:n] {
		if e.Length == 0 || e.Logical < r.last || e.Logical+e.Length < e.Logical {
			return fmt.Errorf("compare extents of %s: %w: extent %+v overlaps the one before or is empty",
				r.f.Name(), ErrNoChangeList, e)
		}
		r.last = e.Logical + e.Length
	}
	if n < len(r.buf) || n > 0 && r.buf[n-1].Flags&blockdev.FiemapExtentLast != 0 {
		r.done = true
	}
	if n > 0 {
		r.next = r.last
	} else {
		r.done = true
	}
	return nil
}
