package pipeio

import (
	"os"
	"testing"
)

func TestGrow(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	n, err := Grow(w, DefaultPipeSize)
	if err != nil {
		t.Fatalf("Grow: %v", err)
	}
	if n < DefaultPipeSize {
		t.Fatalf("Grow gave %d bytes, want >= %d", n, DefaultPipeSize)
	}
	// Asking for less never shrinks.
	if m, err := Grow(r, 4096); err != nil || m != n {
		t.Fatalf("Grow(4096) = %d, %v; want %d, nil", m, err, n)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := Grow(f, DefaultPipeSize); n != 0 || err != nil {
		t.Fatalf("Grow(regular file) = %d, %v; want 0, nil", n, err)
	}
}
