package sshtest

import (
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// MixedTree fills a new directory with about size bytes of files as a
// server's disk holds them: half incompressible (random, like media or
// compressed archives), half text (Go's own sources, which lz4 shrinks
// about 3×), in a few subdirectories. The content is the same on every run.
func MixedTree(tb testing.TB, size int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "tree")
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'l', 'k', 'p', 'i', 'p', 'e'}))
	const fileSize = 1 << 20
	n := int(size / 2 / fileSize)
	for i := 0; i < n; i++ {
		buf := make([]byte, fileSize-int(rng.IntN(4096)))
		for j := 0; j+8 <= len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		writeTreeFile(tb, filepath.Join(dir, "media", fmt.Sprintf("blob%03d.bin", i)), buf)
	}
	text := goSources(tb, size/2)
	for i := 0; len(text) > 0; i++ {
		m := min(len(text), 256<<10)
		writeTreeFile(tb, filepath.Join(dir, "src", fmt.Sprintf("d%02d", i/16), fmt.Sprintf("file%03d.go.txt", i)), text[:m])
		text = text[m:]
	}
	writeTreeFile(tb, filepath.Join(dir, "etc", "hostname"), []byte("primary\n"))
	return dir
}

// goSources returns up to limit bytes of Go's standard library sources.
func goSources(tb testing.TB, limit int64) []byte {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "src")
	var buf []byte
	stop := fmt.Errorf("enough")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
		if int64(len(buf)) >= limit {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		tb.Fatalf("read Go sources under %s: %v", root, err)
	}
	for n := len(buf); n > 0 && int64(len(buf)) < limit; {
		buf = append(buf, buf[:n]...) // more text than Go has: repeat it
	}
	return buf[:min(int64(len(buf)), limit)]
}

func writeTreeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Ext4Image makes an image file of size bytes holding an ext4 filesystem
// populated from tree (mkfs.ext4 -d, no mount needed) and returns its path.
func Ext4Image(tb testing.TB, size int64, tree string) string {
	tb.Helper()
	testutil.NeedCmd(tb, "mkfs.ext4")
	img := testutil.SparseFile(tb, size)
	testutil.Run(tb, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "blkpipe",
		"-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", tree, img)
	return img
}

// RandomImage makes an image of size bytes of seeded random data.
func RandomImage(tb testing.TB, size int64, seed byte) string {
	tb.Helper()
	return testutil.NewFile(tb, "random.img", func(f *os.File) error {
		_, err := io.CopyN(f, rand.NewChaCha8([32]byte{seed}), size)
		return err
	})
}

// BLAKE3 returns the hex BLAKE3-256 (what b3sum and blkwrite's "verified blake3" print) of the file or device at path.
func BLAKE3(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := digest.New()
	defer h.Close()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	sum := h.Sum()
	return hex.EncodeToString(sum[:])
}

// Diff returns the number of bytes in which a and b (files or devices)
// differ and the offset of the first, comparing the first n bytes.
func Diff(tb testing.TB, a, b string, n int64) (count, first int64) {
	tb.Helper()
	fa, err := os.Open(a)
	if err != nil {
		tb.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		tb.Fatal(err)
	}
	defer fb.Close()
	first = -1
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < n; {
		m := int(min(int64(len(ba)), n-off))
		if _, err := io.ReadFull(fa, ba[:m]); err != nil {
			tb.Fatalf("read %s at %d: %v", a, off, err)
		}
		if _, err := io.ReadFull(fb, bb[:m]); err != nil {
			tb.Fatalf("read %s at %d: %v", b, off, err)
		}
		for i := 0; i < m; i++ {
			if ba[i] != bb[i] {
				if first < 0 {
					first = off + int64(i)
				}
				count++
			}
		}
		off += int64(m)
	}
	return count, first
}

// Mount mounts dev read-only on a new directory and unmounts it when the
// test ends.
func Mount(tb testing.TB, dev string) string {
	tb.Helper()
	mnt := tb.TempDir()
	testutil.Run(tb, "mount", "-o", "ro", dev, mnt)
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// TreeDigests maps each regular file below dir (by relative path) to its
// SHA-256, skipping ext4's lost+found.
func TreeDigests(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && rel == "lost+found" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			m[rel] = BLAKE3(tb, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walk %s: %v", dir, err)
	}
	return m
}
