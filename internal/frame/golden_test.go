package frame

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGolden pins the format: a small stream of a fixed source with a
// fixed stream id, codec none (compressed bytes may change with the codec
// library; framing must not), one per digest algorithm. small.blkp is the
// SHA-256 stream every earlier writer made; both are samples for other
// implementations; go test -run Golden -update rewrites them.
func TestGolden(t *testing.T) {
	src := append(append([]byte("blkpipe\n"), make([]byte, 2*MinBlockSize)...), "end\n"...)
	for _, tc := range []struct {
		file string
		alg  DigestAlg
	}{
		{"small.blkp", DigestSHA256},
		{"small-blake3.blkp", DigestBLAKE3},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			got := encode(t, src, WithBlockSize(MinBlockSize), WithSourceSize(int64(len(src))), WithDigest(tc.alg))
			want := golden(t, tc.file, got)
			d, err := decode(want)
			if err != nil || !bytes.Equal(d.data, src) || d.hdr.DigestAlg != tc.alg || !d.end.Verified || d.end.Digest != sourceDigest(tc.alg, src) {
				t.Fatalf("golden stream does not decode to its source: %v", err)
			}
		})
	}
}

// golden compares got with testdata/name (rewritten first with -update)
// and returns the file's bytes.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stream differs from %s (format change? run with -update only if intended)", p)
	}
	return want
}
