// Package testutil holds helpers shared by blkpipe's tests: root checks,
// loop devices on sparse images, and building the tools once per test binary.
//
// Every helper takes testing.TB, calls tb.Helper, and registers cleanup with
// tb.Cleanup so resources are released even when the test fails.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a missing
// prerequisite is a failure, not a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason, unless the tests run in CI, where the
// missing prerequisite fails the test instead.
func Skip(tb testing.TB, reason string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("prerequisite missing in CI: %s", reason)
	}
	tb.Skip(reason)
}

// NeedRoot skips (or fails, in CI) unless the test runs as root.
func NeedRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Skip(tb, "needs root (loop devices, mounts)")
	}
}

// NeedCmd skips (or fails, in CI) unless every named command is on PATH.
func NeedCmd(tb testing.TB, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Skip(tb, fmt.Sprintf("needs %s on PATH", n))
		}
	}
}

// Run runs name with args and fails the test, showing its output, if it
// does not exit 0. It returns stdout.
func Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// NewFile creates the file name in a fresh temporary directory, has fill
// write it, closes it and returns its path. Any error fails tb.
func NewFile(tb testing.TB, name string, fill func(f *os.File) error) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := fill(f); err != nil {
		tb.Fatalf("write %s: %v", p, err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// SparseFile creates a sparse file of size bytes in a fresh temporary
// directory and returns its path.
func SparseFile(tb testing.TB, size int64) string {
	tb.Helper()
	return NewFile(tb, "disk.img", func(f *os.File) error { return f.Truncate(size) })
}

// LoopDevice attaches image as a loop device (losetup --find --show, never
// a fixed number), with any extra losetup arguments such as
// "--sector-size", "4096", and detaches it when the test ends. Needs root.
func LoopDevice(tb testing.TB, image string, args ...string) string {
	tb.Helper()
	NeedRoot(tb)
	NeedCmd(tb, "losetup")
	out := Run(tb, "losetup", append(append([]string{"--find", "--show"}, args...), image)...)
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		tb.Fatalf("losetup printed %q", out)
	}
	tb.Cleanup(func() {
		// A just-closed device can be briefly busy (udev); retry a little.
		for i := 0; i < 20; i++ {
			if exec.Command("losetup", "-d", dev).Run() == nil {
				return
			}
			exec.Command("udevadm", "settle").Run()
		}
		tb.Errorf("could not detach %s", dev)
	})
	return dev
}

// LoopImage creates a sparse image of size bytes and attaches it as a loop
// device; it returns the device and the image path.
func LoopImage(tb testing.TB, size int64) (dev, image string) {
	tb.Helper()
	image = SparseFile(tb, size)
	return LoopDevice(tb, image), image
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Tool builds cmd/<name> of this module once per test binary (CGO_ENABLED=0,
// as shipped) and returns the path of the executable.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "blkpipe-tools-")
		if err != nil {
			tb.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", out, "github.com/blkpipe/blkpipe/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = ModuleRoot(tb)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// Main runs a package's tests and then removes the executables Tool
// built for them: func TestMain(m *testing.M) { testutil.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	RemoveTools()
	os.Exit(code)
}

// RemoveTools removes the executables Tool built; a TestMain that does
// more than Main calls it after m.Run.
func RemoveTools() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir, built = "", map[string]string{}
	}
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate testutil source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// FirstDiff returns the offset of the first byte where a and b differ (the
// shorter one's length if one is a prefix of the other), or -1 if they are
// equal.
func FirstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// EachFile runs f as a subtest, named by the file's base name, for every
// file matching pattern (filepath.Glob), with its contents. It fails t if
// nothing matches: a check of every golden file must not pass on none.
func EachFile(t *testing.T, pattern string, f func(t *testing.T, path string, b []byte)) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no file matches %s: %v", pattern, err)
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f(t, p, b)
		})
	}
}
