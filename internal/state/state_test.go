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
