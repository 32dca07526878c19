package frame

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGolden pins the format: a small stream of a fixed source with a
// fixed stream id, codec none (compressed bytes may change with the codec
// library; framing must not). testdata/small.blkp is also a sample for
// other implementations; go test -run Golden -update rewrites it.
func TestGolden(t *testing.T) {
	src := append(append([]byte("blkpipe\n"), make([]byte, 2*MinBlockSize)...), "end\n"...)
	got := encode(t, src, WithBlockSize(MinBlockSize), WithSourceSize(int64(len(src))))
	p := filepath.Join("testdata", "small.blkp")
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
	d, err := decode(want)
	if err != nil || !bytes.Equal(d.data, src) {
		t.Fatalf("golden stream does not decode to its source: %v", err)
	}
}
