package sums

import (
	"bytes"
	"errors"
	"testing"
)

// TestTable checks random reads of a kept sums stream and a patched copy
// of it against sums written from the data itself.
func TestTable(t *testing.T) {
	data := make([]byte, 5*4096+100)
	for i := range data {
		data[i] = byte(i * 7 / 4096)
	}
	write := func(d []byte) []byte {
		var b bytes.Buffer
		sw, err := NewWriter(&b, 4096, int64(len(d)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sw.Write(d); err != nil {
			t.Fatal(err)
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	old := write(data)
	tb, err := OpenTable(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]uint64, 2)
	if err := tb.Get(4, got); err != nil || got[0] != Sum(data[4*4096:5*4096]) || got[1] != Sum(data[5*4096:]) {
		t.Fatalf("Get(4): %x %v", got, err)
	}
	if err := tb.Get(5, got); err == nil {
		t.Fatal("Get past the last block succeeded")
	}
	next := append([]byte(nil), data...)
	copy(next[4096:], "changed")
	var patched bytes.Buffer
	if err := tb.CopyPatched(&patched, map[int64]uint64{1: Sum(next[4096:8192])}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(patched.Bytes(), write(next)) {
		t.Fatal("patched table differs from the sums of the changed data")
	}
	bad := append([]byte(nil), old...)
	bad[HeaderLen+3] ^= 1
	tb, err = OpenTable(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.CopyPatched(&patched, nil); !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged table copied: %v", err)
	}
	if _, err := OpenTable(bytes.NewReader(old[:len(old)-1]), int64(len(old)-1)); err == nil {
		t.Fatal("short table opened")
	}
}
