package changes

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func fillRandom(r *rand.Rand, p []byte) {
	for i := range p {
		p[i] = byte(r.Uint32())
	}
}

// writeRandom opens path with flag|O_WRONLY (add os.O_CREATE for a new
// file) and writes size pseudo-random bytes, the same for the same seed,
// synchronously.
func writeRandom(tb testing.TB, path string, flag, size int, seed uint64) {
	tb.Helper()
	f, err := os.OpenFile(path, flag|os.O_WRONLY|unix.O_DSYNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, 1<<20)
	for off := 0; off < size; off += len(buf) {
		fillRandom(r, buf)
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			tb.Fatal(err)
		}
	}
}

// dirty writes to the first size bytes of path what a night of use might,
// synchronously: 40 random 4 KiB blocks, a 1 MiB run at an offset aligned
// to 4 KiB only, and the last block (thin_delta once missed blocks at the
// end of a device); then zero, if set, makes a range read as zeros. It
// returns the offsets of the 4 KiB blocks it touched.
func dirty(tb testing.TB, path string, size int64, seed uint64, zero func(*os.File) Range) map[int64]bool {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DSYNC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, ^seed))
	touched := map[int64]bool{}
	write := func(p []byte, off int64) {
		fillRandom(r, p)
		if _, err := f.WriteAt(p, off); err != nil {
			tb.Fatal(err)
		}
		for b := off; b < off+int64(len(p)); b += 4096 {
			touched[b] = true
		}
	}
	block := make([]byte, 4096)
	for range 40 {
		write(block, r.Int64N(size/4096)*4096)
	}
	write(make([]byte, 1<<20), 9<<20+12288)
	write(block, size-4096)
	if zero != nil {
		z := zero(f)
		for b := z.Off; b < z.End(); b += 4096 {
			touched[b] = true
		}
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	return touched
}

// checkBlocks compares the old and new contents a and b block by block:
// every 4 KiB block that differs must have been touched and be in changed
// or zeroed, blocks in zeroed must read as zeros in b, every touched block
// must differ, and the lists may hold at most 20 % more than the touched
// blocks rounded out to unit (the source's granularity).
func checkBlocks(tb testing.TB, a, b []byte, changed, zeroed List, touched map[int64]bool, unit int64) {
	tb.Helper()
	checkNormal(tb, changed)
	checkNormal(tb, zeroed)
	if len(a) != len(b) {
		tb.Fatalf("old content has %d bytes, new %d", len(a), len(b))
	}
	zero := make([]byte, 4096)
	differ := 0
	for off := int64(0); off < int64(len(a)); off += 4096 {
		blk := Range{off, 4096}
		if zeroed.Covers(blk) && !bytes.Equal(b[off:off+4096], zero) {
			tb.Errorf("block at %d is listed as zeroed but does not read as zeros", off)
		}
		if bytes.Equal(a[off:off+4096], b[off:off+4096]) {
			continue
		}
		differ++
		if !touched[off] {
			tb.Errorf("block at %d differs but was not written", off)
		}
		if !changed.Covers(blk) && !zeroed.Covers(blk) {
			tb.Errorf("block at %d differs but the change list misses it", off)
		}
	}
	if differ != len(touched) {
		tb.Errorf("%d blocks differ, want the %d touched", differ, len(touched))
	}
	units := map[int64]bool{}
	for off := range touched {
		units[off/unit] = true
	}
	got := changed.Bytes() + zeroed.Bytes()
	if limit := int64(len(units)) * unit * 12 / 10; got > limit {
		tb.Errorf("change lists hold %d bytes, more than %d (%d units of %d touched)", got, limit, len(units), unit)
	}
	tb.Logf("%d blocks differ; changed: %d ranges, %d bytes; zeroed: %d ranges, %d bytes; %d units of %d touched",
		differ, len(changed), changed.Bytes(), len(zeroed), zeroed.Bytes(), len(units), unit)
}

func readAll(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustOpen(tb testing.TB, path string) *os.File {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}
