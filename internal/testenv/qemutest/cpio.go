package qemutest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks
// as an initramfs. Parent directories are emitted before their entries,
// since the kernel does not create them.
type cpioWriter struct {
	w    *bufio.Writer
	n    int64
	ino  int
	dirs map[string]bool
	err  error
}

func newCpio(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{"": true, "/": true, ".": true}}
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(b)
	c.n += int64(n)
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) header(name string, mode uint32, size int) {
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	c.write([]byte(fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)))
	c.write(append([]byte(name), 0))
	c.pad()
}

// mkdirAll adds dir and its missing parents (mode 0755).
func (c *cpioWriter) mkdirAll(dir string) {
	dir = path.Clean("/" + dir)
	if c.dirs[dir] {
		return
	}
	c.mkdirAll(path.Dir(dir))
	c.dirs[dir] = true
	c.header(dir[1:], modeDir|0o755, 0)
}

// file adds a regular file with the given content and permissions.
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	name = path.Clean("/" + name)
	c.mkdirAll(path.Dir(name))
	c.header(name[1:], modeFile|perm, len(data))
	c.write(data)
	c.pad()
}

// hostFile adds the content of the host file src (symlinks followed) as name.
func (c *cpioWriter) hostFile(name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	c.file(name, uint32(fi.Mode().Perm()), data)
	return c.err
}

// symlink adds name pointing to target.
func (c *cpioWriter) symlink(name, target string) {
	name = path.Clean("/" + name)
	c.mkdirAll(path.Dir(name))
	c.header(name[1:], modeLink|0o777, len(target))
	c.write([]byte(target))
	c.pad()
}

// close writes the trailer and flushes.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
