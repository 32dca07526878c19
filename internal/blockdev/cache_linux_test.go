package blockdev

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// cachedFile is a file of random bytes open with O_DIRECT and a
// CachedReader of it.
type cachedFile struct {
	path string
	data []byte
	f    *os.File
	r    *CachedReader
	page int
	// align is what O_DIRECT needs of lengths.
	align int
	// locked maps the file, its cached pages locked (cache).
	locked []byte
}

func newCachedFile(t testing.TB, size int) *cachedFile {
	t.Helper()
	path, data := randomImage(t, size, 16)
	f, direct, err := OpenDirect(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if !direct {
		t.Skip("the temporary directory's filesystem refuses O_DIRECT")
	}
	r := NewCachedReader(f, DirectAlign(f))
	if r == nil {
		t.Fatal("NewCachedReader of a regular file open with O_DIRECT = nil")
	}
	c := &cachedFile{path: path, data: data, f: f, r: r, page: os.Getpagesize(), align: DirectAlign(f)}
	t.Cleanup(func() {
		unix.Munmap(c.locked)
		r.Close()
	})
	// Written pages are dirty, and DropCache keeps dirty pages.
	if err := Fdatasync(r.buffered); err != nil {
		t.Fatal(err)
	}
	return c
}

// cache empties the page cache of the file, then locks in it the pages
// for which in says true (mlock of a mapping with MADV_RANDOM, which
// reads no other page), so that no other program drops them before the
// test reads, and returns which pages are cached.
func (c *cachedFile) cache(t testing.TB, in func(page int) bool) []byte {
	t.Helper()
	if c.locked != nil {
		unix.Munmap(c.locked)
		c.locked = nil
	}
	if err := DropCache(c.r.buffered, 0, 0); err != nil {
		t.Fatal(err)
	}
	vec := c.resident(t)
	if bytes.IndexByte(vec, 1) >= 0 {
		t.Skip("the temporary directory's filesystem keeps its pages in the cache (tmpfs)")
	}
	mem, err := unix.Mmap(int(c.r.buffered.Fd()), 0, len(vec)*c.page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	c.locked = mem
	if err := unix.Madvise(mem, unix.MADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	for i := range vec {
		if in(i) {
			if err := unix.Mlock(mem[i*c.page : (i+1)*c.page]); err != nil {
				t.Skipf("cannot lock pages in the page cache: %v", err)
			}
		}
	}
	return c.resident(t)
}

func (c *cachedFile) resident(t testing.TB) []byte {
	t.Helper()
	vec := make([]byte, (len(c.data)+c.page-1)/c.page)
	if err := Resident(c.r.buffered, 0, len(c.data), vec); err != nil {
		t.Fatal(err)
	}
	return vec
}

// check reads n bytes at off and compares them, the count and the error
// with the file's; it returns the bytes of cached pages among them.
func (c *cachedFile) check(t testing.TB, off int64, n int, cached []byte) int64 {
	t.Helper()
	buf := AlignedBuffer(n, c.page)
	got, err := c.r.ReadAt(buf, off)
	want := max(0, min(n, len(c.data)-int(off)))
	wantErr := error(nil)
	if want < n {
		wantErr = io.EOF
	}
	if got != want || err != wantErr {
		t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", n, off, got, err, want, wantErr)
	}
	if start := min(off, int64(len(c.data))); !bytes.Equal(buf[:got], c.data[start:start+int64(got)]) {
		t.Fatalf("ReadAt(%d bytes at %d): the bytes differ from the file's", n, off)
	}
	var fromCache int64
	pg, end := int64(c.page), off+int64(got)
	for p := off / pg; p*pg < end; p++ {
		if cached[p] == 1 {
			fromCache += min(end, (p+1)*pg) - max(off, p*pg)
		}
	}
	return fromCache
}

// TestCachedReader reads a file a few pages of which are cached at offsets
// and lengths that cross from cached to uncached pages and past the end:
// the bytes, counts and errors are the file's, the cached pages come from
// the cache, and the reads leave the cache as it was.
func TestCachedReader(t *testing.T) {
	const size = 3<<20 + 5000
	c := newCachedFile(t, size)
	last := (size - 1) / c.page
	cached := c.cache(t, func(p int) bool {
		return p < 4 || p == 10 || p >= 64 && p < 128 || p == last
	})
	pg := int64(c.page)
	var want int64
	for _, tc := range []struct {
		off int64
		n   int
	}{
		{0, 4096}, {0, 64 << 10}, {2 * pg, 4 * int(pg)}, {8 * pg, 16 << 10},
		{10 * pg, c.align}, {60 * pg, 1 << 20}, {1 << 20, 1 << 20}, {3 << 20, 8192},
		{int64(last) * pg, int(pg)}, {int64(last-1) * pg, 3 * int(pg)},
		{0, (size + 4095) &^ 4095}, {4 << 20, 4096}, {12 * pg, 0},
	} {
		t.Run(fmt.Sprintf("%d@%d", tc.n, tc.off), func(t *testing.T) {
			want += c.check(t, tc.off, tc.n, cached)
		})
	}
	if got := c.r.cached.Load(); got != want {
		t.Errorf("%d bytes came from the cache, want %d (those of cached pages)", got, want)
	}
	if c.r.uncached.Load() == 0 {
		t.Error("no byte was read with O_DIRECT")
	}
	if after := c.resident(t); !bytes.Equal(after, cached) {
		t.Errorf("the reads changed which pages are cached: %d before, %d after", bytes.Count(cached, []byte{1}), bytes.Count(after, []byte{1}))
	}
}

// FuzzCachedReader reads any aligned range of a file cached in any pattern
// of 16 KiB stretches and compares it with the file.
func FuzzCachedReader(f *testing.F) {
	f.Add(uint64(0x5), uint16(0), uint16(8))
	f.Add(uint64(0xf0f0f0f0f0f0f0f0), uint16(3), uint16(300))
	f.Add(^uint64(0), uint16(255), uint16(4095))
	f.Add(uint64(1)<<63, uint16(250), uint16(100))
	const size = 1<<20 + 1234
	c := newCachedFile(f, size)
	f.Fuzz(func(t *testing.T, mask uint64, offPage, sectors uint16) {
		cached := c.cache(t, func(p int) bool { return mask>>(p/4%64)&1 != 0 })
		off := int64(offPage%300) * int64(c.page)
		c.check(t, off, (int(sectors)%(2<<20/c.align)+1)*c.align, cached)
		if after := c.resident(t); !bytes.Equal(after, cached) {
			t.Errorf("the read changed which pages are cached")
		}
	})
}

// TestCachedReaderDevice: a block device is left to O_DIRECT.
func TestCachedReaderDevice(t *testing.T) {
	image, _ := randomImage(t, 1<<20, 17)
	dev := testutil.LoopDevice(t, image)
	f := open(t, dev, os.O_RDONLY|unix.O_DIRECT)
	if r := NewCachedReader(f, DirectAlign(f)); r != nil {
		r.Close()
		t.Fatalf("NewCachedReader(%s) is not nil", dev)
	}
}
