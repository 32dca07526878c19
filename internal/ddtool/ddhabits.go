package ddtool

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
)

// processStart is as close to the process's start as Go code gets (package
// initialisation, before main): status=progress lines are due once a
// second from here, as dd's are from its start a millisecond after exec.
var processStart = time.Now()

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

// framedTextError refuses a text conversion (conv=ucase, swab, block, ...)
// on a framed stream blkwrite received: converted, the stream's bytes
// would no longer be the data its checksums cover, and decoded, the data
// would land unconverted, unlike dd's.
func framedTextError(name string) error {
	return &usageError{fmt.Sprintf("%s is a framed stream: the text conversions (conv=ucase, swab, block, ...) apply on the sending side (blkcat conv=... --frame), or use --raw to convert the stream's bytes", ddcopy.Quote(name))}
}
