package main

import (
	"os"

	"github.com/blkpipe/blkpipe/internal/progress"
)

// width returns -w's columns, else the terminal's (progress.Width, asked
// at every draw so a resized window is followed); 80 when unknown.
func (d *display) width() int {
	if d.fixedWidth > 0 {
		return d.fixedWidth
	}
	return progress.Width(d.tty)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return progress.IsTerminal(f) }
