package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// TestAIO reads a file at several offsets at once, with O_DIRECT where the
// file system allows it, and checks every event against the file's bytes:
// tags, counts, data, a read that starts at the end, and Wait after Close.
func TestAIO(t *testing.T) {
	const size = 8<<20 + 12288
	path, data := randomImage(t, size, 1)
	f, direct, err := OpenDirect(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Logf("O_DIRECT: %v", direct)
	a, err := NewAIO(8)
	if err != nil {
		testutil.Skip(t, fmt.Sprintf("no native AIO here: %v", err))
	}
	reads := []struct {
		off  int64
		n    int
		want int
	}{
		{0, 1 << 20, 1 << 20},
		{4 << 20, 4 << 20, 4 << 20},
		{1 << 20, 4096, 4096},
		{8 << 20, 1 << 20, 12288}, // short: the file ends
		{size, 4096, 0},           // at the end
	}
	bufs := make([][]byte, len(reads))
	for i, r := range reads {
		bufs[i] = AlignedBuffer(r.n, 4096)
		if err := a.Pread(f, bufs[i], r.off, uint64(100+i)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	seen := make(map[uint64]bool)
	ev := make([]AIOEvent, 3)
	for len(seen) < len(reads) {
		n, err := a.Wait(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev[:n] {
			i := int(e.Tag) - 100
			if i < 0 || i >= len(reads) || seen[e.Tag] {
				t.Fatalf("unexpected or repeated tag %d", e.Tag)
			}
			seen[e.Tag] = true
			r := reads[i]
			if e.Res != int64(r.want) {
				t.Fatalf("read %d at %d: result %d, want %d", i, r.off, e.Res, r.want)
			}
			if !bytes.Equal(bufs[i][:r.want], data[r.off:r.off+int64(r.want)]) {
				t.Fatalf("read %d at %d: bytes differ from the file", i, r.off)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ev); err == nil {
		t.Fatal("Wait after Close returned no error")
	}
}

// TestAIOErrors: a read the kernel refuses is reported at submission, and
// a failing read comes back as a negative errno.
func TestAIOErrors(t *testing.T) {
	a, err := NewAIO(2)
	if err != nil {
		testutil.Skip(t, fmt.Sprintf("no native AIO here: %v", err))
	}
	defer a.Close()
	path := filepath.Join(t.TempDir(), "w")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Reading a write-only descriptor fails: at submission or as EBADF.
	err = a.Pread(w, make([]byte, 4096), 0, 7)
	if err != nil {
		if !errors.Is(err, unix.EBADF) {
			t.Fatalf("submit on a write-only file: %v, want EBADF", err)
		}
		return
	}
	ev := make([]AIOEvent, 1)
	if _, err := a.Wait(ev); err != nil {
		t.Fatal(err)
	}
	if ev[0].Tag != 7 || ev[0].Res != -int64(unix.EBADF) {
		t.Fatalf("event %+v, want tag 7 and -EBADF", ev[0])
	}
}

// TestAIOReads keeps more reads than its depth submitted through
// AIOReads and checks each done's result and bytes; a Read after Close is
// not submitted.
func TestAIOReads(t *testing.T) {
	const size = 4 << 20
	path, data := randomImage(t, size, 2)
	f, _, err := OpenDirect(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewAIOReads(4)
	if err != nil {
		testutil.Skip(t, fmt.Sprintf("no native AIO here: %v", err))
	}
	const n = 64 // 64 KiB each: more than 4 in flight must wait for a slot
	results := make(chan error, n)
	for i := range n {
		off := int64(i) * (size / n)
		p := AlignedBuffer(size/n, 4096)
		if !r.Read(f, p, off, func(res int64) {
			if res != int64(len(p)) || !bytes.Equal(p, data[off:off+int64(len(p))]) {
				results <- fmt.Errorf("read at %d: %d bytes, or other bytes", off, res)
				return
			}
			results <- nil
		}) {
			t.Fatalf("read %d was not submitted", i)
		}
	}
	for range n {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	r.Close()
	if r.Read(f, AlignedBuffer(4096, 4096), 0, func(int64) { t.Error("done ran after Close") }) {
		t.Error("a Read after Close was submitted")
	}
}
