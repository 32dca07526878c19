package sums_test

// An independent reader of docs/FORMAT.md's block-sums stream, written
// from the document and sharing no code with package sums, checks every
// golden sums file in testdata/, and testdata/small.sums byte for byte
// against the Example's dump in docs/FORMAT.md.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"github.com/zeebo/xxh3"
)

// specSums checks b against docs/FORMAT.md's "Block sums, version 1" and
// returns its block size, size and digests.
func specSums(b []byte) (bs int64, size int64, digests []uint64, err error) {
	le := binary.LittleEndian
	c := crc32.MakeTable(0x82F63B78)
	if len(b) < 40+16 || !bytes.Equal(b[:8], []byte("\x89BLKS\r\n\x1a")) {
		return 0, 0, nil, fmt.Errorf("no magic or shorter than header and trailer")
	}
	if le.Uint16(b[8:]) != 1 || le.Uint16(b[10:]) != 40 || b[12] != 1 {
		return 0, 0, nil, fmt.Errorf("version %d header_len %d digest_alg %d", le.Uint16(b[8:]), le.Uint16(b[10:]), b[12])
	}
	if !bytes.Equal(b[13:16], []byte{0, 0, 0}) || le.Uint32(b[20:]) != 0 || le.Uint32(b[32:]) != 0 {
		return 0, 0, nil, fmt.Errorf("reserved bytes set")
	}
	if crc32.Checksum(b[:36], c) != le.Uint32(b[36:]) {
		return 0, 0, nil, fmt.Errorf("header_crc")
	}
	bs, size = int64(le.Uint32(b[16:])), int64(le.Uint64(b[24:]))
	if bs < 512 || bs > 16<<20 || bs%512 != 0 || size < 0 {
		return 0, 0, nil, fmt.Errorf("block_size %d size %d", bs, size)
	}
	n := (size + bs - 1) / bs
	if int64(len(b)) != 40+8*n+16 {
		return 0, 0, nil, fmt.Errorf("%d bytes, want %d for %d digests", len(b), 40+8*n+16, n)
	}
	t := b[40+8*n:]
	if int64(le.Uint64(t)) != n || le.Uint32(t[8:]) != crc32.Checksum(b[:40+8*n], c) || string(t[12:]) != "SEND" {
		return 0, 0, nil, fmt.Errorf("trailer % x", t)
	}
	for i := range n {
		digests = append(digests, le.Uint64(b[40+8*i:]))
	}
	return bs, size, digests, nil
}

// TestSpecGolden: every golden sums file follows FORMAT.md, and
// small.sums is the Example: the dump in the document, and the XXH3-64 of
// each 512-byte block of its 1036-byte source (blkpipe\n, 1024 zero bytes,
// end\n).
func TestSpecGolden(t *testing.T) {
	testutil.EachFile(t, filepath.Join("testdata", "*.sums"), func(t *testing.T, p string, b []byte) {
		bs, size, digests, err := specSums(b)
		if err != nil {
			t.Fatalf("%s breaks docs/FORMAT.md: %v", p, err)
		}
		if filepath.Base(p) != "small.sums" {
			return
		}
		if dump := formatExample(t); !bytes.Equal(b, dump) {
			t.Errorf("small.sums differs from docs/FORMAT.md's dump:\n got %x\nwant %x", b, dump)
		}
		src := append(append([]byte("blkpipe\n"), make([]byte, 1024)...), "end\n"...)
		if bs != 512 || size != int64(len(src)) || len(digests) != 3 {
			t.Fatalf("block size %d, size %d, %d digests", bs, size, len(digests))
		}
		for i, d := range digests {
			block := src[i*512 : min((i+1)*512, len(src))]
			if want := xxh3.Hash(block); d != want {
				t.Errorf("digest %d = %016x, XXH3-64 of the block is %016x", i, d, want)
			}
		}
	})
}

// dumpLine is a line of a hex dump in docs/FORMAT.md: "    0028  3e 44 ...".
var dumpLine = regexp.MustCompile(`^    ([0-9a-f]{4})  ((?:[0-9a-f]{2} )*[0-9a-f]{2})`)

// formatExample returns the bytes of the sums Example's dump in
// docs/FORMAT.md.
func formatExample(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, ex, ok := strings.Cut(string(doc), "`internal/sums/testdata/small.sums` (80 bytes)")
	if !ok {
		t.Fatal("docs/FORMAT.md has no small.sums Example")
	}
	var out []byte
	for _, l := range strings.Split(ex, "\n") {
		m := dumpLine.FindStringSubmatch(l)
		if m == nil {
			if len(out) > 0 && strings.TrimSpace(l) == "" {
				break
			}
			continue
		}
		if fmt.Sprintf("%04x", len(out)) != m[1] {
			t.Fatalf("dump line at %s follows %d bytes", m[1], len(out))
		}
		b, _ := hex.DecodeString(strings.ReplaceAll(m[2], " ", ""))
		out = append(out, b...)
	}
	if len(out) != 80 {
		t.Fatalf("the Example's dump has %d bytes, it says 80", len(out))
	}
	return out
}
