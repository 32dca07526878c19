package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CachedReader reads a regular file open with O_DIRECT, taking what is
// already in the page cache from the cache: each ReadAt asks which of its
// pages are cached (mincore on a mapping of the range), copies those
// through a second, buffered descriptor of the same file, and reads the
// rest with O_DIRECT. Reading cached pages adds nothing to the cache, so
// the reader still leaves it as it found it, while a file just written or
// read by another program is not read again from the disk.
//
// preadv2's RWF_NOWAIT cannot serve as the test: a buffered read with it
// that misses the cache returns EAGAIN but starts readahead of the range
// anyway (Linux since 5.9), which would fill the cache. A page evicted
// between mincore and the copy is read through the buffered descriptor,
// which advises POSIX_FADV_RANDOM, so no more than that page's range is
// cached.
//
// Block devices are left to O_DIRECT: a device's page cache is dropped
// when its last opener closes it, and while a filesystem holds it, its
// pages of file data can be older than the disk (the filesystem writes
// file data around the device's cache).
type CachedReader struct {
	direct, buffered *os.File
	page             int64
	// Bytes copied from the cache and read with O_DIRECT, for tests.
	cached, uncached atomic.Int64
}

// NewCachedReader returns a CachedReader of f, a regular file open with
// O_DIRECT whose reads are at multiples of align (DirectAlign), or nil
// when the page cache cannot help or cannot be asked: f is not a regular
// file, align does not divide the page size, the second descriptor cannot
// be opened (/proc not mounted), or mincore would not tell this process
// (Linux reports every page cached to a caller that neither owns the file
// nor could write it). Close closes the second descriptor, not f.
func NewCachedReader(f *os.File, align int) *CachedReader {
	page := os.Getpagesize()
	if align <= 0 || page%align != 0 {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	// Reopen the file itself (not its name, which may have moved), without
	// O_DIRECT, which a dup would share.
	self := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	b, err := os.Open(self)
	if err != nil {
		return nil
	}
	bi, err := b.Stat()
	if err != nil || !os.SameFile(fi, bi) || !mincoreTells(self, bi) {
		b.Close()
		return nil
	}
	unix.Fadvise(int(b.Fd()), 0, 0, unix.FADV_RANDOM)
	return &CachedReader{direct: f, buffered: b, page: int64(page)}
}

// mincoreTells reports whether mincore tells this process the truth about
// the file fi (at path): Linux answers for files the caller owns, may
// write, or with CAP_FOWNER (taken here as being root).
func mincoreTells(path string, fi os.FileInfo) bool {
	euid := os.Geteuid()
	st, ok := fi.Sys().(*syscall.Stat_t)
	return euid == 0 || ok && st.Uid == uint32(euid) || unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS) == nil
}

// Close closes the reader's buffered descriptor.
func (r *CachedReader) Close() error { return r.buffered.Close() }

// ReadAt reads len(p) bytes at off as f.ReadAt does (n < len(p) only with
// an error, io.EOF at the end of the file), each page from the cache if it
// is there and with O_DIRECT if not. p, off and len(p) must suit O_DIRECT
// as for f; an off that is not a multiple of the page size is read with
// O_DIRECT alone.
func (r *CachedReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 || off%r.page != 0 {
		return r.readDirect(p, off)
	}
	vec := make([]byte, (int64(len(p))+r.page-1)/r.page)
	if err := Resident(r.buffered, off, len(p), vec); err != nil {
		return r.readDirect(p, off)
	}
	for i := 0; i < len(vec); {
		in := vec[i]&1 != 0
		j := i + 1
		for j < len(vec) && (vec[j]&1 != 0) == in {
			j++
		}
		lo, hi := int64(i)*r.page, min(int64(j)*r.page, int64(len(p)))
		var k int
		var err error
		if in {
			k, err = r.buffered.ReadAt(p[lo:hi], off+lo)
			r.cached.Add(int64(k))
		} else {
			k, err = r.readDirect(p[lo:hi], off+lo)
		}
		if err != nil {
			return int(lo) + k, err
		}
		i = j
	}
	return len(p), nil
}

func (r *CachedReader) readDirect(p []byte, off int64) (int, error) {
	k, err := r.direct.ReadAt(p, off)
	r.uncached.Add(int64(k))
	return k, err
}

// Resident sets vec[i] to 1 for each page of the n bytes at off of f
// (off a multiple of the page size) that is in the page cache, and to 0
// for the others (mincore on a shared mapping of the range, which reads
// nothing). vec needs one byte per page. Pages past the end of the file
// are not resident.
func Resident(f *os.File, off int64, n int, vec []byte) error {
	page := os.Getpagesize()
	if n <= 0 {
		return nil
	}
	pages := (n + page - 1) / page
	if len(vec) < pages {
		return errors.New("blockdev: Resident's vector is shorter than the range's pages")
	}
	return control(f, "mincore", func(fd uintptr) error {
		mem, err := unix.Mmap(int(fd), off, pages*page, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		defer unix.Munmap(mem)
		// x/sys has no Mincore for Linux.
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			return errno
		}
		for i := range vec[:pages] {
			vec[i] &= 1
		}
		return nil
	})
}

var _ io.ReaderAt = (*CachedReader)(nil)
