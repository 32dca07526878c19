package changes

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

const imageSize = 64 << 20

// punch punches the 64 KiB at 40 MiB of f.
func punch(tb testing.TB) func(*os.File) Range {
	return func(f *os.File) Range {
		r := Range{40 << 20, 64 << 10}
		if err := blockdev.PunchHole(f, r.Off, r.Len); err != nil {
			tb.Fatal(err)
		}
		return r
	}
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
			writeRandom(t, prev, os.O_CREATE, imageSize, 1)
			testutil.Run(t, "cp", "--reflink=always", prev, next)

			l, err := compareFiles(t, prev, next)
			if err != nil {
				t.Fatalf("Compare of a fresh clone: %v", err)
			}
			if len(l) != 0 {
				t.Fatalf("a fresh clone differs from its source in %v", l)
			}

			touched := dirty(t, next, imageSize, 2, punch(t))
			l, err = compareFiles(t, prev, next)
			if err != nil {
				t.Fatalf("Compare: %v", err)
			}
			checkBlocks(t, readAll(t, prev), readAll(t, next), l, nil, touched, 4096)

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
	writeRandom(t, img, os.O_CREATE, imageSize, 3)
	s1, s2 := filepath.Join(mnt, "s1"), filepath.Join(mnt, "s2")
	testutil.Run(t, "btrfs", "-q", "subvolume", "snapshot", "-r", vol, s1)
	touched := dirty(t, img, imageSize, 4, punch(t))
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
	checkBlocks(t, readAll(t, prev), readAll(t, next), l, nil, touched, 4096)
}

func TestCompareNoChangeList(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		dir, err := os.MkdirTemp("/dev/shm", "changes")
		if err != nil {
			testutil.Skip(t, "no /dev/shm: "+err.Error())
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
