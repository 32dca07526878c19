package ddmsg

import (
	"io"
	"os"
	"path/filepath"
)

// ProgName is the name messages carry: "dd" when the tool was started
// through a link named dd (argv0's base name), as dd's own messages say
// "dd:" and scripts grep for that; else the tool's name.
func ProgName(name, argv0 string) string {
	if filepath.Base(argv0) == "dd" {
		return "dd"
	}
	return name
}

// Stderr is standard error remembering its first write error: dd exits 1
// when it could not write its statistics (`dd 2>/dev/full`), as gnulib's
// close_stdout makes any failed write to stderr a failure.
type Stderr struct {
	w   io.Writer
	err error
}

// NewStderr wraps w, the process's standard error.
func NewStderr(w io.Writer) *Stderr { return &Stderr{w: w} }

// Write writes p to the wrapped writer and keeps its first error.
func (s *Stderr) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// File returns the wrapped writer if it is a file (to ask whether it is a
// terminal), else nil.
func (s *Stderr) File() *os.File {
	f, _ := s.w.(*os.File)
	return f
}

// Failed reports whether a write to standard error failed: a run that
// succeeded otherwise then exits 1.
func (s *Stderr) Failed() bool { return s.err != nil }
