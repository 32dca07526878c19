package digest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata (map golden file and fuzz seeds)")

func testMap(tb testing.TB, n int) *Map {
	tb.Helper()
	root, leaves := Leaves(gen("mixed", n))
	return &Map{Size: int64(n), Root: root, Leaves: leaves}
}

func TestMapRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, LeafSize, LeafSize + 1, 3*LeafSize + 5, pieceSize + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			m := testMap(t, n)
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != MapLen(int64(n)) {
				t.Fatalf("map is %d bytes, MapLen says %d", len(b), MapLen(int64(n)))
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Size != m.Size || got.Root != m.Root || !equalCVs(got.Leaves, m.Leaves) {
				t.Fatal("map differs after a round trip")
			}
			tr, err := got.Tree()
			if err != nil {
				t.Fatal(err)
			}
			if root, err := tr.Root(); err != nil || root != m.Root {
				t.Fatalf("tree root %x, %v, want %x", root, err, m.Root)
			}
		})
	}
}

// TestMapGolden pins the map format (go test -run MapGolden -update).
func TestMapGolden(t *testing.T) {
	b, err := testMap(t, 2*LeafSize+1036).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("testdata", "small.b3map")
	if *update {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("map differs from %s (format change? run with -update only if intended)", p)
	}
}

func TestMapReject(t *testing.T) {
	good, err := testMap(t, 3*LeafSize+5).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	one, err := testMap(t, 100).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	tests := []struct {
		name, want string
		b          []byte
	}{
		{"empty", "truncated", nil},
		{"short header", "truncated", good[:40]},
		{"bad magic", "bad magic", mod(good, func(b []byte) []byte { b[1] = 'X'; return b })},
		{"flipped header", "header checksum", mod(good, func(b []byte) []byte { b[30] ^= 1; return b })},
		{"flipped leaf", "checksum", mod(good, func(b []byte) []byte { b[MapHeaderLen+40] ^= 1; return b })},
		{"flipped trailer", "checksum", mod(good, func(b []byte) []byte { b[len(b)-6] ^= 1; return b })},
		{"truncated", "truncated", good[:len(good)-1]},
		{"one leaf short", "truncated", good[:len(good)-Size]},
		{"too long", "too long", append(bytes.Clone(good), 0)},
		{"wrong size map", "truncated", append(bytes.Clone(good[:MapHeaderLen]), one[MapHeaderLen:]...)},
		{"bad tag", "trailer tag", mod(good, func(b []byte) []byte { b[len(b)-1] = 'X'; return b })},
		{"leaves of another source", "leaves hash to", mod(good, func(b []byte) []byte {
			b[MapHeaderLen] ^= 1
			return fixMapCRCs(b)
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.b)
			if !errors.Is(err, ErrMap) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unmarshal: %v, want ErrMap saying %q", err, tc.want)
			}
		})
	}
}

// fixMapCRCs recomputes a map's header and trailer CRCs.
func fixMapCRCs(b []byte) []byte {
	if len(b) < MapHeaderLen+MapTrailerLen {
		return b
	}
	le := binaryLE
	le.PutUint32(b[76:], crcC(b[:76]))
	le.PutUint32(b[len(b)-MapTrailerLen:], crcC(b[:len(b)-MapTrailerLen]))
	return b
}
