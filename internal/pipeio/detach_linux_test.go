package pipeio

import (
	"io"
	"os"
	"testing"
)

func TestDetach(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := w.Write([]byte("stream")); err != nil {
		t.Fatal(err)
	}
	if err := Detach(w); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	// The reader gets what was written, then end of file, although w
	// is still open.
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "stream" {
		t.Fatalf("read %q, %v; want \"stream\" and end of file", got, err)
	}
	// w's descriptor now holds /dev/null: writes succeed and go nowhere.
	if n, err := w.Write([]byte("late")); n != 4 || err != nil {
		t.Errorf("write after Detach: %d, %v", n, err)
	}
	if IsPipe(w) {
		t.Error("w is still a pipe after Detach")
	}

	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Detach(f); err != nil || !func() bool { fi, _ := f.Stat(); return fi.Mode().IsRegular() }() {
		t.Errorf("Detach of a regular file: %v; it must stay the file", err)
	}
}
