package digest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

var binaryLE = binary.LittleEndian

func crcC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func mapSeeds(tb testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, n := range []int{0, 100, 2*LeafSize + 1} {
		b, err := testMap(tb, n).Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		seeds[fmt.Sprintf("valid-%d", n)] = b
	}
	huge := bytes.Clone(seeds["valid-100"])
	binaryLE.PutUint64(huge[24:], MaxMapSize)
	binaryLE.PutUint64(huge[64:], uint64(NumLeaves(MaxMapSize)))
	seeds["huge-size"] = fixMapCRCs(huge)
	return seeds
}

// TestFuzzMapCorpus checks that the seed corpus holds mapSeeds
// (go test -run FuzzMapCorpus -update rewrites it).
func TestFuzzMapCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMapUnmarshal")
	for name, b := range mapSeeds(t) {
		p := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("seed missing (run go test -run FuzzMapCorpus -update): %v", err)
		}
	}
}

// FuzzMapUnmarshal: Unmarshal never panics, accepts only maps that
// marshal back to the same bytes, and allocates no more than the input's
// size calls for.
func FuzzMapUnmarshal(f *testing.F) {
	for _, b := range mapSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, fixMapCRCs(bytes.Clone(b))} {
			m, err := Unmarshal(in)
			if err != nil {
				continue
			}
			out, err := m.Marshal()
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("accepted map does not marshal back: %v", err)
			}
		}
	})
}
