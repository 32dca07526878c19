package ddtool

import (
	"io"
	"path/filepath"
)

// progName is the name messages carry: "dd" when the tool was started
// through a link named dd (argv0's base name), as dd's own messages say
// "dd:" and scripts grep for that; else the tool's name.
func progName(name, argv0 string) string {
	if filepath.Base(argv0) == "dd" {
		return "dd"
	}
	return name
}

// stickyWriter is standard error remembering its first write error: dd
// exits 1 when it could not write its statistics (`dd 2>/dev/full`), as
// gnulib's close_stdout makes any failed write to stderr a failure.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// exitCode is code, or ExitFailure when a run that succeeded could not
// write to standard error.
func (s *stickyWriter) exitCode(code int) int {
	if code == ExitOK && s.err != nil {
		return ExitFailure
	}
	return code
}
