// Package state is what blkcat and blkwrite keep between runs: the resume
// Token that names how far a framed copy durably got, blkwrite's resume
// state files, and the sums sidecars of blkcat --sums, all in one state
// directory that main gives as a Dir.
package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blkpipe/blkpipe/internal/atomicfile"
)

// DefaultDir is where state is kept unless $BLKPIPE_STATE_DIR names
// another directory (main reads it).
const DefaultDir = "/var/lib/blkpipe"

// Dir is the state directory: blkwrite's resume state and the sums
// sidecars of blkcat --sums, one file per target. The zero Dir is
// DefaultDir.
type Dir string

func (d Dir) dir() string {
	if d == "" {
		return DefaultDir
	}
	return string(d)
}

const stateMagic = "blkpipe-resume 1"

// Path is the resume state file for target: its absolute path escaped
// into one file name in the state directory.
func (d Dir) Path(target string) string { return d.file(target, ".resume") }

// file is target's file in the state directory with the extension ext:
// target's absolute path escaped into one file name, then ext. Every
// file kept for a target (Path, CopyPath, SentPath ...) is named so.
func (d Dir) file(target, ext string) string {
	dir := d.dir()
	abs, err := filepath.Abs(target)
	if err != nil {
		abs = target
	}
	var b strings.Builder
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.' && i > 0, c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return filepath.Join(dir, b.String()+ext)
}

// Load reads target's resume state; it returns os.ErrNotExist when there
// is none.
func (d Dir) Load(target string) (Token, error) {
	b, err := os.ReadFile(d.Path(target))
	if err != nil {
		return Token{}, err
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(b)), stateMagic+" ")
	if !ok {
		return Token{}, fmt.Errorf("resume state %s is damaged", d.Path(target))
	}
	t, err := ParseToken(line)
	if err != nil {
		return Token{}, fmt.Errorf("resume state %s is damaged: %v", d.Path(target), err)
	}
	return t, nil
}

// Save replaces target's resume state atomically: temp file, fsync,
// rename, fsync of the directory.
func (d Dir) Save(target string, t Token) error {
	return d.replace(d.Path(target), []byte(stateMagic+" "+t.String()+"\n"))
}

// replace writes b to path atomically: temp file in the same directory,
// fsync, rename, fsync of the directory.
func (d Dir) replace(path string, b []byte) error {
	return d.replaceWith(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// replaceWith is replace with the bytes written by write.
func (d Dir) replaceWith(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, write)
}

// Remove removes target's resume state (with a changed-block delta's
// set-aside kept state and touched leaves, aside.go); there being none is
// no error.
func (d Dir) Remove(target string) error {
	if err := remove(d.Path(target)); err != nil {
		return err
	}
	return d.removeResume(target)
}

// remove removes the files at paths, stopping at the first failure; a
// file that is not there is no error.
func remove(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
