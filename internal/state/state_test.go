package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, tok := range []Token{
		{ID: [16]byte{1, 2, 3}, Offset: 4096, Size: 1 << 30, Sample: 0xdeadbeef, HasSample: true},
		{ID: [16]byte{0xff}, Offset: 0, Size: 0},
		{ID: [16]byte{9}, Offset: 8192, Size: 1 << 20, Sample: 1, HasSample: true, Changed: true, BaseRoot: [32]byte{0xab, 31: 0xcd}, Applied: 0x0123456789abcdef},
	} {
		got, err := ParseToken(tok.String())
		if err != nil || got != tok {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v", tok.String(), got, err, tok)
		}
	}
	for _, bad := range []string{"", "x:1:2", "00112233445566778899aabbccddeeff:5:4", "00112233445566778899aabbccddeeff:1:2:xyz",
		"00112233445566778899aabbccddeeff:1:2:0000000000000001:ab",
		"00112233445566778899aabbccddeeff:1:2:0000000000000001:" + strings.Repeat("ab", 32) + ":12",
		"00112233445566778899aabbccddeeff:1:2:0000000000000001:" + strings.Repeat("zz", 32) + ":0000000000000001"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

func TestDir(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "state"))
	target := "/dev/vg/data"
	if _, err := d.Load(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load with no state: %v", err)
	}
	tok := Token{ID: [16]byte{7}, Offset: 8192, Size: 1 << 20}
	if err := d.Save(target, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Load(target); err != nil || got != tok {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, tok)
	}
	if filepath.Dir(d.Path(target)) != string(d) || filepath.Base(d.Path(target)) != "%2Fdev%2Fvg%2Fdata.resume" {
		t.Errorf("Path = %s", d.Path(target))
	}
	if err := d.Remove(target); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(target); err != nil {
		t.Errorf("Remove of no state: %v", err)
	}
	if Dir("").Path("x") == "" || filepath.Dir(Dir("").Path("/x")) != DefaultDir {
		t.Errorf("the zero Dir is not DefaultDir: %s", Dir("").Path("/x"))
	}
}

func TestSample(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
	a, err := Sample(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 1
	b, err := Sample(bytes.NewReader(data), int64(len(data)))
	if err != nil || a == b {
		t.Errorf("Sample did not see the first block change: %x %x %v", a, b, err)
	}
	if _, err := Sample(bytes.NewReader(data[:100]), 4096); err == nil {
		t.Error("Sample of a short reader succeeded")
	}
}

// TestApplied: the Applied sum of a delta's blocks does not depend on how
// the records split them, and zeros count as zero bytes.
func TestApplied(t *testing.T) {
	b := bytes.Repeat([]byte("blkpipe!"), 3*AppliedBlock/8)
	b = append(b, make([]byte, AppliedBlock)...)
	b = append(b, 1, 2, 3) // a short last block
	var whole, split Applied
	whole.Add(8192, b)
	split.Add(8192, b[:AppliedBlock])
	split.Add(8192+AppliedBlock, b[AppliedBlock:3*AppliedBlock])
	split.AddZero(8192+3*AppliedBlock, AppliedBlock)
	split.Add(8192+4*AppliedBlock, b[4*AppliedBlock:])
	if whole != split || whole == 0 {
		t.Fatalf("one record %x, split %x", whole, split)
	}
	var moved Applied
	moved.Add(4096, b)
	if moved == whole {
		t.Fatal("the same bytes at another offset sum alike")
	}
}

// TestLeaves: the touched-leaves file round-trips, merges adjacent
// ranges, and is refused when cut short or out of order.
func TestLeaves(t *testing.T) {
	d := Dir(t.TempDir())
	var l Leaves
	for _, r := range [][2]int64{{0, 0}, {1, 2}, {2, 2}, {5, 7}, {9, 9}} {
		l.Add(r[0], r[1])
	}
	l.Dev, l.Ino, l.Stamp = 1, 2, "ctime:3"
	if err := d.SaveLeaves("/dev/x", l); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadLeaves("/dev/x")
	want := [][2]int64{{0, 2}, {5, 7}, {9, 9}}
	if err != nil || got.Stamp != "ctime:3" || got.Dev != 1 || got.Ino != 2 || len(got.Ranges) != len(want) {
		t.Fatalf("LoadLeaves = %+v, %v", got, err)
	}
	for i := range want {
		if got.Ranges[i] != want[i] {
			t.Fatalf("ranges %v, want %v", got.Ranges, want)
		}
	}
	b, _ := os.ReadFile(d.LeavesPath("/dev/x"))
	for _, bad := range [][]byte{b[:len(b)-4], bytes.Replace(b, []byte("5 7"), []byte("1 7"), 1)} {
		os.WriteFile(d.LeavesPath("/dev/x"), bad, 0o600)
		if _, err := d.LoadLeaves("/dev/x"); err == nil {
			t.Errorf("damaged leaves file %q accepted", bad)
		}
	}
	if err := d.Remove("/dev/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.LeavesPath("/dev/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left the leaves file: %v", err)
	}
}
