package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// width returns -w's columns, else the terminal's (TIOCGWINSZ), asked at
// every draw so a resized window is followed; 80 when unknown.
func (d *display) width() int {
	if d.fixedWidth > 0 {
		return d.fixedWidth
	}
	if d.tty == nil {
		return 80
	}
	ws, err := unix.IoctlGetWinsize(int(d.tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// isTerminal reports whether f is a terminal (TCGETS succeeds).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
