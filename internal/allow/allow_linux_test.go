package allow

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// layout builds a directory tree with symlinks that lead out of the
// allowed directory, back into it, and to nothing, and returns its root
// and the allowed paths: an existing image, a new one, and a device.
func layout(tb testing.TB) (root string, allowed []string) {
	tb.Helper()
	root = tb.TempDir()
	for _, d := range []string{"imgs", "far/dir", "far/imgs"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "imgs/data.img"), []byte("allowed"), 0o644)
	os.WriteFile(filepath.Join(root, "far/data.img"), []byte("elsewhere"), 0o644)
	os.Link(filepath.Join(root, "imgs/data.img"), filepath.Join(root, "far/hard.img"))
	for name, to := range map[string]string{
		"imgs/lnk":  "../far/dir",
		"imgs/self": ".",
		"imgs/up":   "..",
		"imgs/dl":   "../far/new.img",
		"imgs/nul":  "/dev/null",
		"imgs/abs":  filepath.Join(root, "imgs"),
		"far/back":  "../imgs",
		"far/dir/x": "../../imgs/data.img",
	} {
		os.Symlink(to, filepath.Join(root, name))
	}
	return root, []string{filepath.Join(root, "imgs/data.img"), filepath.Join(root, "imgs/new.img"), "/dev/null"}
}

var parts = []string{"imgs", "far", "dir", "lnk", "self", "up", "dl", "nul", "abs", "back", "x", "..", ".", "", "data.img", "new.img", "hard.img", "imgs/new.img"}

// pathOf makes a path under root from b, one component a byte.
func pathOf(root string, b []byte) string {
	var p []string
	for _, c := range b {
		p = append(p, parts[int(c)%len(parts)])
	}
	return root + "/" + strings.Join(p, "/")
}

// checkProperty is the property: if Check accepts a path, the file the
// kernel opens there (or creates there, O_CREAT|O_EXCL as for a new
// image) is an allowed one, and Verify of it agrees.
func checkProperty(t *testing.T, l *List, root string, allowed []string, path string) {
	g, err := l.Check(path)
	if err != nil {
		if !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Check(%q): %v does not wrap ErrNotAllowed", path, err)
		}
		return
	}
	var want, got unix.Stat_t
	if g.Exists {
		if err := unix.Stat(path, &got); err != nil {
			t.Fatalf("Check(%q) accepted a path that cannot be opened: %v", path, err)
		}
		ok := false
		for _, a := range allowed {
			if unix.Stat(a, &want) == nil && identOf(&want).same(identOf(&got)) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("Check(%q) accepted a file that is none of %v", path, allowed)
		}
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("Check(%q) accepted a new file that cannot be created: %v", path, err)
	}
	defer os.Remove(filepath.Join(root, "imgs/new.img"))
	defer f.Close()
	if err := g.Verify(f); err != nil {
		t.Fatalf("Verify after creating %q: %v", path, err)
	}
	if unix.Stat(filepath.Join(root, "imgs/new.img"), &want) != nil || unix.Fstat(int(f.Fd()), &got) != nil || !identOf(&want).same(identOf(&got)) {
		t.Fatalf("Check(%q) accepted a new file that is not the allowed %s", path, allowed[1])
	}
}

// FuzzCheck checks the property over paths through the layout's
// symlinks, "." and "..".
func FuzzCheck(f *testing.F) {
	for _, seed := range [][]byte{{0, 14}, {0, 3, 11, 14}, {0, 15}, {0, 3, 11, 15}, {0, 7}, {0, 4, 4, 14}, {0, 5, 0, 14}, {1, 9, 14}, {1, 16}, {1, 2, 10}, {0, 6}, {8, 15}} {
		f.Add(seed)
	}
	root, allowed := layout(f)
	l, err := Resolve(allowed)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 12 {
			return
		}
		checkProperty(t, l, root, allowed, pathOf(root, b))
	})
}

// TestCheck lists paths the textual check got wrong and the ones that
// must still pass.
func TestCheck(t *testing.T) {
	root, allowed := layout(t)
	l, err := Resolve(allowed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		ok   bool
	}{
		{"imgs/data.img", true},
		{"imgs/new.img", true},
		{"imgs/self/data.img", true},
		{"far/back/new.img", true},
		{"far/hard.img", true}, // the same inode
		{"far/dir/x", true},    // a symlink to the allowed file
		{"imgs/nul", true},     // /dev/null by its device number
		{"imgs/lnk/../data.img", false},
		{"imgs/lnk/../new.img", false},
		{"imgs/dl", false},
		{"imgs/up/far/data.img", false},
		{"imgs/data.img/", false},
		{"imgs/new.img/", false},
		{"imgs/", false},
		{"imgs/..", false},
		{"far/imgs/new.img", false},
	}
	for _, tt := range tests {
		p := filepath.Join(root, "") + "/" + tt.path
		g, err := l.Check(p)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%q) = %v, %v; want ok %v", tt.path, g, err, tt.ok)
		}
		checkProperty(t, l, root, allowed, p)
	}
	if _, err := Resolve([]string{filepath.Join(root, "imgs/dl")}); err == nil || !strings.Contains(err.Error(), "dangling symlink") {
		t.Errorf("Resolve of a dangling symlink: %v", err)
	}
}
