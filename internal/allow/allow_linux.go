// Package allow decides by identity, not by text, whether a path a
// restricted ssh key names is one of the paths its forced command allows.
//
// The allowed paths are resolved once, at start, to what the kernel finds
// there: a block or character device by its device number (st_rdev), so
// /dev/vg1/data and /dev/dm-3 are one target; any other file by its file
// system and inode. A client's path is then opened (O_PATH, following
// symlinks and "..", exactly as the real open will) and its identity
// compared; no textual comparison decides anything, so /imgs/lnk/../x,
// where lnk is a symlink to another directory, is the file the kernel
// reaches, not /imgs/x.
//
// An allowed image file that does not exist yet is allowed by its parent
// directory's identity and its final name: the client's path must end in
// that name, must not exist (not even as a dangling symlink, which O_CREAT
// would follow), and its parent must be the allowed directory. After the
// real open, Verify checks that the opened file is the allowed one (for a
// new file: the file now at that name in that directory), so a path
// changed between the check and the open is caught too.
package allow

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotAllowed is returned when a path is not one of the allowed ones.
var ErrNotAllowed = errors.New("not allowed")

// ident is a file as the kernel knows it.
type ident struct {
	dev, ino uint64
	rdev     uint64
	mode     uint32 // S_IFMT bits
}

func identOf(st *unix.Stat_t) ident {
	return ident{dev: st.Dev, ino: st.Ino, rdev: st.Rdev, mode: st.Mode & unix.S_IFMT}
}

// same reports whether a and b are one file: one device number for
// devices, one inode on one file system for anything else.
func (a ident) same(b ident) bool {
	if a.mode != b.mode {
		return false
	}
	if a.mode == unix.S_IFBLK || a.mode == unix.S_IFCHR {
		return a.rdev == b.rdev
	}
	return a.dev == b.dev && a.ino == b.ino
}

// entry is one allowed path.
type entry struct {
	path   string
	exists bool
	file   ident // when exists
	dir    ident // when !exists: the parent directory
	base   string
}

// List is a set of allowed paths resolved to identities.
type List struct {
	entries []entry
}

// Resolve resolves the allowed paths as the administrator wrote them in
// the forced command (their symlinks are followed: /dev/vg1/data). A path
// that does not exist is allowed as a new file in its existing parent
// directory (see the package comment); a dangling symlink is refused.
func Resolve(paths []string) (*List, error) {
	l := &List{}
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("empty allowed path")
		}
		e := entry{path: p}
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		switch {
		case err == nil:
			e.exists, e.file = true, identOf(&st)
		case errors.Is(err, unix.ENOENT):
			if unix.Lstat(p, &st) == nil {
				return nil, fmt.Errorf("allowed path %s is a dangling symlink", p)
			}
			dir := filepath.Dir(p)
			if err := unix.Stat(dir, &st); err != nil {
				return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return nil, fmt.Errorf("allowed path %s: %s is not a directory", p, dir)
			}
			e.dir, e.base = identOf(&st), filepath.Base(p)
		default:
			return nil, &os.PathError{Op: "stat", Path: p, Err: err}
		}
		l.entries = append(l.entries, e)
	}
	return l, nil
}

// Paths returns the allowed paths as given, for messages.
func (l *List) Paths() []string {
	var s []string
	for _, e := range l.entries {
		s = append(s, e.path)
	}
	return s
}

// Grant is a client's path found to be an allowed one.
type Grant struct {
	Path    string // the client's path, which the tool opens
	Allowed string // the allowed path it matched
	IsBlock bool   // a block device
	Exists  bool   // the file existed at the check
	e       entry
}

// Check opens the client's path as the real open would (following
// symlinks and ".." in the kernel) and returns its grant if it is one of
// the allowed files, or an error wrapping ErrNotAllowed.
func (l *List) Check(path string) (*Grant, error) {
	if path == "" {
		return nil, fmt.Errorf("no path: %w", ErrNotAllowed)
	}
	var st unix.Stat_t
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
		}
		id := identOf(&st)
		for _, e := range l.entries {
			if e.exists && e.file.same(id) {
				return &Grant{Path: path, Allowed: e.path, IsBlock: id.mode == unix.S_IFBLK, Exists: true, e: e}, nil
			}
		}
		return nil, fmt.Errorf("%s: %w", path, ErrNotAllowed)
	}
	if !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrNotAllowed)
	}
	dir, base := split(path)
	if base == "" || base == "." || base == ".." {
		return nil, fmt.Errorf("%s: %w", path, ErrNotAllowed)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrNotAllowed)
	}
	defer unix.Close(dfd)
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		// A dangling symlink: O_CREAT would create its target.
		return nil, fmt.Errorf("%s is a dangling symlink: %w", path, ErrNotAllowed)
	}
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	id := identOf(&st)
	for _, e := range l.entries {
		if !e.exists && e.base == base && e.dir.same(id) {
			return &Grant{Path: path, Allowed: e.path, e: e}, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNotAllowed)
}

// split cuts path at its last slash without cleaning it: "a/lnk/../x"
// is the directory "a/lnk/.." (which the kernel resolves through lnk) and
// the name "x".
func split(path string) (dir, base string) {
	i := strings.LastIndexByte(path, '/')
	switch {
	case i < 0:
		return ".", path
	case i == 0:
		return "/", path[1:]
	}
	return path[:i], path[i+1:]
}

// Verify checks that f, the file the tool opened for g.Path, is the
// allowed file: the one resolved at start, or for a new file, the file
// now at the allowed name in the allowed directory.
func (g *Grant) Verify(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: g.Path, Err: err}
	}
	id := identOf(&st)
	if g.e.exists {
		if g.e.file.same(id) {
			return nil
		}
		return fmt.Errorf("%s changed since it was checked: %w", g.Path, ErrNotAllowed)
	}
	dir, base := split(g.Path)
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", g.Path, err, ErrNotAllowed)
	}
	defer unix.Close(dfd)
	var dst, fst unix.Stat_t
	if unix.Fstat(dfd, &dst) != nil || !g.e.dir.same(identOf(&dst)) ||
		unix.Fstatat(dfd, base, &fst, unix.AT_SYMLINK_NOFOLLOW) != nil || !identOf(&fst).same(id) {
		return fmt.Errorf("%s changed since it was checked: %w", g.Path, ErrNotAllowed)
	}
	return nil
}
