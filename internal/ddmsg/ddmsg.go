// Package ddmsg words failures as GNU dd words them: "error reading 'x':
// Input/output error", with file names quoted as dd quotes them. Every
// blkpipe package that talks dd's language uses it.
package ddmsg

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// Error is a failure worded as GNU dd words it: "error reading 'x':
// Input/output error". Its Err keeps the cause for errors.Is.
type Error struct {
	Msg string // what was being done to what, e.g. "error writing '/dev/sdb'"
	Err error  // the cause, usually a syscall.Errno
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + Strerror(e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Strerror returns the C library's text for the errno inside err ("No space
// left on device"), so messages match dd's; other errors keep their text.
func Strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return Strerror(pe.Err)
	}
	return err.Error()
}

// Quote quotes a file name as GNU's quoteaf does for ordinary names:
// 'name', with an embedded quote written as '\”.
func Quote(name string) string {
	return "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
}

// QuoteF quotes a name as GNU's quotef does: only when the shell would need
// it ("standard output" has a space, so it is quoted; /dev/sda is not).
func QuoteF(name string) string {
	if name != "" && strings.IndexFunc(name, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ',' || r == ':' || r == '@' || r == '%' || r == '=' ||
			('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
	}) < 0 {
		return name
	}
	return Quote(name)
}
