package sums_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/sums"
)

var update = flag.Bool("update", false, "rewrite testdata/*.sums")

// TestGolden pins the format: the sums of the 1036-byte source of
// frame's testdata/small.blkp ("blkpipe\n", 1024 zero bytes, "end\n") in
// 512-byte blocks.
func TestGolden(t *testing.T) {
	src := append(append([]byte("blkpipe\n"), make([]byte, 1024)...), "end\n"...)
	var b bytes.Buffer
	w, err := sums.NewWriter(&b, 512, int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(src)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "small.sums")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("sums stream changed:\n got %x\nwant %x", b.Bytes(), want)
	}
	if _, _, err := readAll(want); err != nil {
		t.Fatal(err)
	}
}
