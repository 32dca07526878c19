package progress

import (
	"os"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal (the TCGETS ioctl succeeds).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Width returns the columns of the terminal f (TIOCGWINSZ), asked anew at
// every call so that a resized window is followed; 80 when f is nil or not
// a terminal.
func Width(f *os.File) int {
	if f == nil {
		return 80
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}
