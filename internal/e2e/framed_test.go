package e2e

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// sample returns size bytes of mixed content: random runs, zero runs and
// text, so every record type and codec path is used.
func sample(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, size)
	for off := 0; off < size; {
		n := min(size-off, 1+rng.IntN(3<<20))
		switch rng.IntN(3) {
		case 0:
			for i := off; i < off+n; i++ {
				data[i] = byte(rng.Uint32())
			}
		case 1: // zeros
		case 2:
			copy(data[off:off+n], bytes.Repeat([]byte("blkpipe moves blocks. "), n/22+1))
		}
		off += n
	}
	return data
}

func TestFramedRoundTrip(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 1<<20 + 777, 9<<20 + 3} {
		data := sample(size, uint64(size))
		src := filepath.Join(dir, "src")
		os.WriteFile(src, data, 0o644)
		sum := digest.Sum256(data)
		for _, z := range [][]string{{"--frame"}, {"-z", "lz4"}, {"-z", "zstd"}, {"-z", "zstd:7"}} {
			stream := filepath.Join(dir, "stream")
			dst := filepath.Join(dir, "dst")
			// The target held other data, longer than the source.
			os.WriteFile(dst, bytes.Repeat([]byte{0xEE}, size+5000), 0o644)
			args := append([]string{"-q"}, z...)
			cmd := exec.Command(blkcat, append(args, src, "of="+stream)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("blkcat %v: %v %s", z, err, out)
			}
			_, stderr, code := run(t, mustRead(t, stream), blkwrite, dst)
			if code != 0 {
				t.Fatalf("size %d %v: blkwrite exit %d: %s", size, z, code, stderr)
			}
			if got := mustRead(t, dst); !bytes.Equal(got, data) {
				t.Fatalf("size %d %v: target differs (%d bytes, want %d)", size, z, len(got), len(data))
			}
			want := "blkwrite: verified blake3 " + hex.EncodeToString(sum[:]) + "\n"
			if !strings.HasSuffix(stderr, want) {
				t.Errorf("size %d %v: stderr %q does not end with %q", size, z, stderr, want)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFramedDevice writes a stream onto a loop device that held old data:
// ZERO runs must become zeros there, and a device too small is refused
// before anything is written.
func TestFramedDevice(t *testing.T) {
	testutil.NeedRoot(t)
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	data := sample(6<<20+512*3, 42)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, data, 0o644)
	stream, _, code := run(t, nil, blkcat, "-q", "-z", "lz4", src)
	if code != 0 {
		t.Fatal("blkcat failed")
	}
	img := testutil.SparseFile(t, 8<<20)
	os.WriteFile(img, bytes.Repeat([]byte{0xEE}, 8<<20), 0o644)
	dev := testutil.LoopDevice(t, img)
	_, stderr, code := run(t, []byte(stream), blkwrite, dev)
	if code != 0 {
		t.Fatalf("blkwrite exit %d: %s", code, stderr)
	}
	got := mustRead(t, dev)
	if !bytes.Equal(got[:len(data)], data) {
		t.Fatalf("device does not hold the source")
	}
	if !bytes.Equal(got[len(data):], bytes.Repeat([]byte{0xEE}, len(got)-len(data))) {
		t.Errorf("the device's tail beyond the source was changed")
	}

	small := testutil.SparseFile(t, 4<<20)
	os.WriteFile(small, bytes.Repeat([]byte{0xEE}, 4<<20), 0o644)
	sdev := testutil.LoopDevice(t, small)
	_, stderr, code = run(t, []byte(stream), blkwrite, sdev)
	want := "blkwrite: target is smaller than the source: '" + sdev + "' holds 4194304 bytes, the stream's source is 6292992 bytes; nothing was written\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
	if got := mustRead(t, sdev); !bytes.Equal(got, bytes.Repeat([]byte{0xEE}, 4<<20)) {
		t.Errorf("the small device was written to")
	}
}

// TestFramedDamage: a flipped byte and a cut stream are refused, named, and
// never reported as success.
func TestFramedDamage(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	data := sample(5<<20, 7)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, data, 0o644)
	stream, _, _ := run(t, nil, blkcat, "-q", "-z", "zstd", src)

	flipped := []byte(stream)
	flipped[len(flipped)/2] ^= 0x10
	_, stderr, code := run(t, flipped, blkwrite, filepath.Join(t.TempDir(), "dst"))
	if code != 1 || !strings.Contains(stderr, "offset") || strings.Contains(stderr, "verified") {
		t.Errorf("flipped byte: exit %d, stderr %q", code, stderr)
	}

	cut := []byte(stream)[:len(stream)*2/3]
	_, stderr, code = run(t, cut, blkwrite, filepath.Join(t.TempDir(), "dst"))
	if code != 1 || !strings.Contains(stderr, "the copy is incomplete:") || strings.Contains(stderr, "verified") {
		t.Errorf("cut stream: exit %d, stderr %q", code, stderr)
	}

	// --raw copies the stream itself; --framed refuses raw data.
	dst := filepath.Join(t.TempDir(), "raw")
	if _, stderr, code := run(t, []byte(stream), blkwrite, "--raw", dst); code != 0 || !bytes.Equal(mustRead(t, dst), []byte(stream)) {
		t.Errorf("--raw: exit %d %s", code, stderr)
	}
	_, stderr, code = run(t, data[:1000], blkwrite, "--framed", filepath.Join(t.TempDir(), "x"))
	if code != 1 || stderr != "blkwrite: 'standard input' is not a framed stream (no blkpipe header); use --raw for raw data\n" {
		t.Errorf("--framed on raw data: exit %d, stderr %q", code, stderr)
	}
}

// TestFramedCheckOnly: of=/dev/null checks a kept stream without writing
// it anywhere (written in order, never truncated, as dd does).
func TestFramedCheckOnly(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	data := sample(3<<20+5, 3)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, data, 0o644)
	stream, _, _ := run(t, nil, blkcat, "-q", "-z", "lz4", src)
	sum := digest.Sum256(data)
	_, stderr, code := run(t, []byte(stream), blkwrite, "-q", "/dev/null")
	if want := "blkwrite: verified blake3 " + hex.EncodeToString(sum[:]) + "\n"; code != 0 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 0, %q", code, stderr, want)
	}
	_, stderr, code = run(t, []byte(stream[:len(stream)-1]), blkwrite, "-q", "/dev/null")
	if code != 1 || !strings.Contains(stderr, "stream truncated") {
		t.Errorf("cut stream: exit %d, stderr %q", code, stderr)
	}
}
