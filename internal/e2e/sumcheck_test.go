package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// sumImages writes random, zero and mixed images of sizes around leaf and
// piece edges (not multiples of 64 KiB among them) and returns their paths.
func sumImages(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for _, size := range []int{0, 1, 65535, 65537, 1<<20 + 4096, 5<<20 + 12345, 9 << 20} {
		for _, kind := range []string{"random", "zero", "mixed"} {
			var b []byte
			switch kind {
			case "random":
				b = randomBytes(size, uint64(size))
			case "zero":
				b = make([]byte, size)
			case "mixed":
				b = sample(size, uint64(size))
			}
			p := filepath.Join(dir, fmt.Sprintf("%s-%d.img", kind, size))
			writeFile(t, p, b)
			paths = append(paths, p)
		}
	}
	return paths
}

// TestSumDigestLikeB3sum: blkcat --digest SRC... prints what b3sum does,
// and --digest=sha256 what sha256sum does, for files and standard input.
func TestSumDigestLikeB3sum(t *testing.T) {
	testutil.NeedCmd(t, "b3sum", "sha256sum")
	files := strings.Join(sumImages(t), " ")
	for _, tc := range []struct{ name, blkcat, anchor string }{
		{"blake3", "$BC --digest " + files, "b3sum " + files},
		{"blake3=", "$BC --digest=blake3 -- " + files, "b3sum " + files},
		{"sha256", "$BC --digest sha256 " + files, "sha256sum " + files},
		{"stdin", "$BC --digest < " + strings.Fields(files)[len(strings.Fields(files))-1], "b3sum < " + strings.Fields(files)[len(strings.Fields(files))-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stderr, code := sh(t, nil, tc.blkcat)
			want, _, _ := sh(t, nil, tc.anchor)
			if code != 0 || got != want {
				t.Fatalf("%s: exit %d, stderr %q\ngot:\n%s\nwant:\n%s", tc.blkcat, code, stderr, got, want)
			}
		})
	}
}

// TestSumDigestLoopDevice: the same on a loop device, whose size is not a
// multiple of 64 KiB, read with O_DIRECT.
func TestSumDigestLoopDevice(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "b3sum", "sha256sum")
	img := filepath.Join(t.TempDir(), "dev.img")
	writeFile(t, img, sample(7<<20+3*512, 7))
	dev := testutil.LoopDevice(t, img)
	for _, alg := range []struct{ flag, anchor string }{{"--digest", "b3sum"}, {"--digest=sha256", "sha256sum"}} {
		got, stderr, code := sh(t, nil, "$BC "+alg.flag+" "+dev)
		want, _, _ := sh(t, nil, alg.anchor+" "+dev)
		if code != 0 || got != want {
			t.Fatalf("blkcat %s %s: exit %d, stderr %q, got %q, want %q", alg.flag, dev, code, stderr, got, want)
		}
	}
}

// TestSumDigestPartlyCached: a file some stretches of which are in the
// page cache hashes as b3sum and sha256sum hash it (blkcat copies those
// from the cache and reads the rest with O_DIRECT), and blkcat's reads
// add no page to the cache.
func TestSumDigestPartlyCached(t *testing.T) {
	testutil.NeedCmd(t, "b3sum", "sha256sum")
	img := filepath.Join(t.TempDir(), "part.img")
	const size = 9<<20 + 12345
	writeFile(t, img, randomBytes(size, 9))
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	cached := func() []byte {
		vec := make([]byte, (size+page-1)/page)
		if err := blockdev.Resident(f, 0, size, vec); err != nil {
			t.Fatal(err)
		}
		return vec
	}
	for _, alg := range []struct{ flag, anchor string }{{"--digest", "b3sum"}, {"--digest=sha256", "sha256sum"}} {
		// Cached: every third stretch of 192 KiB, read without readahead.
		if err := blockdev.Fdatasync(f); err != nil {
			t.Fatal(err)
		}
		if err := blockdev.DropCache(f, 0, 0); err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(cached(), 1) >= 0 {
			t.Skip("the temporary directory's filesystem keeps its pages in the cache (tmpfs)")
		}
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
		buf := make([]byte, 64<<10)
		for off := int64(0); off < size; off += 3 * 192 << 10 {
			for o := off; o < min(off+192<<10, size); o += int64(len(buf)) {
				if _, err := f.ReadAt(buf, o); err != nil && err != io.EOF {
					t.Fatal(err)
				}
			}
		}
		before := cached()
		got, stderr, code := sh(t, nil, "$BC "+alg.flag+" "+img)
		after := cached()
		want, _, _ := sh(t, nil, alg.anchor+" "+img)
		if code != 0 || got != want {
			t.Fatalf("blkcat %s of a partly cached file: exit %d, stderr %q, got %q, want %q", alg.flag, code, stderr, got, want)
		}
		// Other programs may drop pages meanwhile, not add them.
		for i := range after {
			if after[i] > before[i] {
				t.Fatalf("blkcat %s cached page %d (of %d), which was not cached", alg.flag, i, len(after))
			}
		}
	}
}

// TestSumDigestReadError: a source that cannot be read is named, the
// others are still printed, and the exit code is 1.
func TestSumDigestReadError(t *testing.T) {
	img := filepath.Join(t.TempDir(), "a.img")
	writeFile(t, img, randomBytes(100000, 1))
	got, stderr, code := sh(t, nil, "$BC --digest "+img+" /nonexistent/x "+img)
	if code != 1 || strings.Count(got, img) != 2 || !strings.Contains(stderr, "blkcat: '/nonexistent/x': no such file or directory") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, got, stderr)
	}
}

// TestSumStreamDigest: --digest chooses a framed stream's digest, and
// blkwrite verifies and names it.
func TestSumStreamDigest(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	writeFile(t, src, sample(3<<20+777, 3))
	b3, _, _ := sh(t, nil, "b3sum --no-names "+src)
	for _, tc := range []struct{ name, flags, want string }{
		{"sha256-lz4", "--digest sha256 -z lz4", "verified sha256 " + sha256File(t, src)},
		{"sha256-frame", "--frame --digest=sha256", "verified sha256 " + sha256File(t, src)},
		{"blake3-zstd", "-z zstd --digest", "verified blake3 " + strings.TrimSpace(b3)},
		{"default", "--frame", "verified blake3 " + strings.TrimSpace(b3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".out")
			_, stderr, code := sh(t, nil, "$BC -q "+tc.flags+" "+src+" | $BW -q "+out)
			if code != 0 || !strings.Contains(stderr, "blkwrite: "+tc.want+"\n") {
				t.Fatalf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
			if sha256File(t, out) != sha256File(t, src) {
				t.Fatal("the copy differs from the source")
			}
		})
	}
}

// TestSumOldStream: a stream of the version before BLAKE3 (SHA-256,
// internal/frame/testdata/small.blkp) still verifies.
func TestSumOldStream(t *testing.T) {
	golden := filepath.Join(testutil.ModuleRoot(t), "internal/frame/testdata/small.blkp")
	out := filepath.Join(t.TempDir(), "out")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, append(append([]byte("blkpipe\n"), make([]byte, 1024)...), "end\n"...))
	_, stderr, code := sh(t, nil, "$BW "+out+" < "+golden)
	if want := "blkwrite: verified sha256 " + sha256File(t, src) + "\n"; code != 0 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}

// saveMap keeps the digest map of b for target in the test's state
// directory, as blkwrite does after a verified copy.
func saveMap(t *testing.T, target string, b []byte) {
	t.Helper()
	root, leaves := digest.Leaves(b)
	m := digest.Map{Size: int64(len(b)), Root: root, Leaves: leaves}
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := state.Dir(os.Getenv("BLKPIPE_STATE_DIR")).SaveMap(target, mb); err != nil {
		t.Fatal(err)
	}
}

// TestSumCheck: --check passes an intact copy and names the MiB of a
// flipped byte; no map, a damaged one and a resized copy fail clearly.
func TestSumCheck(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "copy.img")
	data := sample(5<<20+4321, 11)
	writeFile(t, img, data)
	saveMap(t, img, data)
	b3, _, _ := sh(t, nil, "b3sum --no-names "+img)
	check := func(t *testing.T) (string, int) {
		t.Helper()
		out, stderr, code := sh(t, nil, "$BC --check "+img)
		if out != "" {
			t.Fatalf("--check wrote %q to stdout", out)
		}
		return stderr, code
	}
	stderr, code := check(t)
	if want := fmt.Sprintf("blkcat: check '%s': ok, blake3 %s\n", img, strings.TrimSpace(b3)); code != 0 || stderr != want {
		t.Fatalf("intact: exit %d, stderr %q, want %q", code, stderr, want)
	}

	for _, off := range []int{3<<20 + 70000, 0, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[off] ^= 0x40
		writeFile(t, img, bad)
		stderr, code = check(t)
		leaf := off / digest.LeafSize * digest.LeafSize
		want := fmt.Sprintf("blkcat: check '%s': differs from its map at MiB %d (byte offset %d); 1 of %d leaves of 64 KiB differ\n",
			img, leaf>>20, leaf, digest.NumLeaves(int64(len(data))))
		if code != 1 || stderr != want {
			t.Fatalf("byte %d flipped: exit %d, stderr %q, want %q", off, code, stderr, want)
		}
	}

	writeFile(t, img, data[:len(data)-1])
	if stderr, code = check(t); code != 1 || !strings.Contains(stderr, "is of 5247201 bytes: not the copy the map describes") {
		t.Fatalf("resized: exit %d, stderr %q", code, stderr)
	}
	mp := state.Dir(os.Getenv("BLKPIPE_STATE_DIR")).MapPath(img)
	mb, _ := os.ReadFile(mp)
	mb[200] ^= 1
	writeFile(t, mp, mb)
	if stderr, code = check(t); code != 1 || !strings.Contains(stderr, "is damaged, not trusted") {
		t.Fatalf("damaged map: exit %d, stderr %q", code, stderr)
	}
	os.Remove(mp)
	if stderr, code = check(t); code != 1 || !strings.Contains(stderr, "no digest map") {
		t.Fatalf("no map: exit %d, stderr %q", code, stderr)
	}
}

// TestSumUsage: a bad algorithm and misused --check are usage errors.
func TestSumUsage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "a.img")
	writeFile(t, img, []byte("x"))
	for _, tc := range []struct{ args, want string }{
		{"--digest=md5 " + img, "invalid argument 'md5' for '--digest': want blake3 (the default) or sha256"},
		{"--frame --digest=sha1 " + img, "invalid argument 'sha1' for '--digest'"},
		{"--check", "--check needs SRC"},
		{"--check --digest=sha256 " + img, "--digest=sha256 does not apply"},
		{"--check -", "not standard input"},
		{"--digest --bs 1M " + img, "unknown option '--bs'"},
		{"--sums --digest " + img, "--digest does not apply"},
	} {
		_, stderr, code := sh(t, nil, "$BC "+tc.args+" >/dev/null")
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("blkcat %s: exit %d, stderr %q, want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
