package changes

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

const imageSize = 64 << 20

// writeImage creates path holding size pseudo-random bytes, written back to
// disk.
func writeImage(tb testing.TB, path string, size int, seed uint64) {
	tb.Helper()
	f, err := os.Create(path)
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
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
}

func fillRandom(r *rand.Rand, p []byte) {
	for i := range p {
		p[i] = byte(r.Uint32())
	}
}

// dirty writes to path what a night of use might: 40 random 4 KiB blocks
// and a 1 MiB run, and punches a 64 KiB hole, all at known offsets, then
// syncs. It returns how many distinct 4 KiB blocks it touched.
func dirty(tb testing.TB, path string, seed uint64) int {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, ^seed))
	touched := map[int64]bool{}
	block := make([]byte, 4096)
	for range 40 {
		b := r.Int64N(imageSize / 4096)
		fillRandom(r, block)
		if _, err := f.WriteAt(block, b*4096); err != nil {
			tb.Fatal(err)
		}
		touched[b] = true
	}
	run := make([]byte, 1<<20)
	fillRandom(r, run)
	const runOff = 17<<20 + 8192 // not aligned to 64 KiB or 1 MiB
	if _, err := f.WriteAt(run, runOff); err != nil {
		tb.Fatal(err)
	}
	for b := int64(runOff / 4096); b < (runOff+1<<20)/4096; b++ {
		touched[b] = true
	}
	const holeOff = 40 << 20
	if err := blockdev.PunchHole(f, holeOff, 64<<10); err != nil {
		tb.Fatal(err)
	}
	for b := int64(holeOff / 4096); b < (holeOff+64<<10)/4096; b++ {
		touched[b] = true
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	return len(touched)
}

// checkChanges compares prev and next block by block: every 4 KiB block
// that differs must be in l, and l may hold at most 20 % more than the
// touched blocks.
func checkChanges(tb testing.TB, l List, prev, next string, touched int) {
	tb.Helper()
	checkNormal(tb, l)
	a, err := os.ReadFile(prev)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(next)
	if err != nil {
		tb.Fatal(err)
	}
	if len(a) != len(b) {
		tb.Fatalf("%s has %d bytes, %s %d", prev, len(a), next, len(b))
	}
	differ := 0
	for off := 0; off < len(a); off += 4096 {
		if bytes.Equal(a[off:off+4096], b[off:off+4096]) {
			continue
		}
		differ++
		if !l.Covers(Range{int64(off), 4096}) {
			tb.Errorf("block at %d differs but the change list misses it", off)
		}
	}
	if differ != touched {
		tb.Errorf("%d blocks differ, want the %d touched", differ, touched)
	}
	if limit := int64(touched) * 4096 * 12 / 10; l.Bytes() > limit {
		tb.Errorf("change list holds %d bytes in %d ranges, more than %d (%d blocks touched)", l.Bytes(), len(l), limit, touched)
	}
	if l.Bytes()%4096 != 0 {
		tb.Errorf("change list holds %d bytes, not whole 4 KiB blocks: %v", l.Bytes(), l)
	}
	tb.Logf("%d blocks differ; change list: %d ranges, %d bytes", differ, len(l), l.Bytes())
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

func compareFiles(tb testing.TB, prev, next string) (List, error) {
	tb.Helper()
	return Compare(mustOpen(tb, prev), mustOpen(tb, next))
}

func TestChangesReflink(t *testing.T) {
	for _, tc := range []struct {
		name string
		mkfs string
		args []string
		size int64
	}{
		{"btrfs", "mkfs.btrfs", []string{"-q"}, 256 << 20},
		{"xfs", "mkfs.xfs", []string{"-q", "-m", "reflink=1"}, 320 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.NeedCmd(t, "cp")
			mnt := testutil.MountFS(t, tc.size, tc.mkfs, tc.args...)
			prev, next := filepath.Join(mnt, "prev.img"), filepath.Join(mnt, "next.img")
			writeImage(t, prev, imageSize, 1)
			testutil.Run(t, "cp", "--reflink=always", prev, next)

			l, err := compareFiles(t, prev, next)
			if err != nil {
				t.Fatalf("Compare of a fresh clone: %v", err)
			}
			if len(l) != 0 {
				t.Fatalf("a fresh clone differs from its source in %v", l)
			}

			touched := dirty(t, next, 2)
			l, err = compareFiles(t, prev, next)
			if err != nil {
				t.Fatalf("Compare: %v", err)
			}
			checkChanges(t, l, prev, next, touched)

			// Growing next lists the new tail.
			if err := os.Truncate(next, imageSize+1<<20); err != nil {
				t.Fatal(err)
			}
			g, err := compareFiles(t, prev, next)
			if err != nil {
				t.Fatalf("Compare after growing: %v", err)
			}
			if !g.Covers(Range{imageSize, 1 << 20}) || g[len(g)-1].End() != imageSize+1<<20 {
				t.Fatalf("grown by 1 MiB, the change list ends %v", g[len(g)-1])
			}

			// A write still in the page cache (delayed allocation) is
			// written back by FIEMAP_FLAG_SYNC and listed.
			f, err := os.OpenFile(next, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			const late = 5<<20 + 4096
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 4096), late); err != nil {
				t.Fatal(err)
			}
			if g, err = Compare(mustOpen(t, prev), f); err != nil {
				t.Fatalf("Compare with a dirty page: %v", err)
			}
			if !g.Covers(Range{late, 4096}) {
				t.Fatalf("the unsynced block at %d is not listed: %v", late, g)
			}
		})
	}
}

func TestChangesBtrfsSnapshots(t *testing.T) {
	testutil.NeedCmd(t, "btrfs")
	mnt := testutil.MountFS(t, 256<<20, "mkfs.btrfs", "-q")
	vol := filepath.Join(mnt, "vol")
	testutil.Run(t, "btrfs", "-q", "subvolume", "create", vol)
	img := filepath.Join(vol, "disk.img")
	writeImage(t, img, imageSize, 3)
	s1, s2 := filepath.Join(mnt, "s1"), filepath.Join(mnt, "s2")
	testutil.Run(t, "btrfs", "-q", "subvolume", "snapshot", "-r", vol, s1)
	touched := dirty(t, img, 4)
	testutil.Run(t, "btrfs", "-q", "subvolume", "snapshot", "-r", vol, s2)
	t.Cleanup(func() {
		for _, s := range []string{s1, s2, vol} {
			exec.Command("btrfs", "-q", "subvolume", "delete", s).Run()
		}
	})
	prev, next := filepath.Join(s1, "disk.img"), filepath.Join(s2, "disk.img")
	l, err := compareFiles(t, prev, next)
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	checkChanges(t, l, prev, next, touched)
}

func TestCompareNoChangeList(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		dir, err := os.MkdirTemp("/dev/shm", "changes")
		if err != nil {
			t.Skip("no /dev/shm:", err)
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "a")
		if err := os.WriteFile(p, make([]byte, 8192), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := compareFiles(t, p, p); !errors.Is(err, ErrNoChangeList) {
			t.Fatalf("Compare on tmpfs: %v, want ErrNoChangeList", err)
		}
	})
	t.Run("btrfs inline", func(t *testing.T) {
		// btrfs stores a file this small inside its metadata
		// (FIEMAP_EXTENT_DATA_INLINE): its address means nothing.
		mnt := testutil.MountFS(t, 128<<20, "mkfs.btrfs", "-q")
		p := filepath.Join(mnt, "small")
		if err := os.WriteFile(p, []byte("inline data"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := compareFiles(t, p, p)
		if !errors.Is(err, ErrNoChangeList) {
			t.Fatalf("Compare of an inline file: %v, want ErrNoChangeList", err)
		}
		t.Log(err)
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if _, err := Compare(r, r); !errors.Is(err, ErrNoChangeList) {
			t.Fatalf("Compare of a pipe: %v, want ErrNoChangeList", err)
		}
	})
}
