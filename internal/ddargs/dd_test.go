package ddargs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// The oracle is the system's GNU dd: tests run it on the same arguments
// and compare what it prints with what Parse returns.

const ddVersion = "dd (coreutils) 9.1"

var (
	ddOnce  sync.Once
	ddFound string // the version line, "" when dd is missing
)

// needDD skips (fails in CI) unless dd is GNU coreutils 9.1, whose
// behaviour the package copies; later versions accept more ("2x3x4", Q).
func needDD(tb testing.TB) {
	tb.Helper()
	testutil.NeedCmd(tb, "dd")
	ddOnce.Do(func() {
		out, err := exec.Command("dd", "--version").Output()
		if err == nil {
			ddFound, _, _ = strings.Cut(string(out), "\n")
		}
	})
	if ddFound != ddVersion {
		testutil.Skip(tb, "differential tests need "+ddVersion+", have "+strconv.Quote(ddFound))
	}
}

// ddResult is what dd printed: its diagnostics without "dd: ", split into
// the warnings Parse returns (zero multiplier, oflag=append without
// conv=notrunc) and the first other line, and its exit code.
type ddResult struct {
	warnings []string
	first    string
	code     int
}

// runDD runs dd with args in the C locale, stdin an empty regular file and
// stdout a regular file in dir.
func runDD(tb testing.TB, dir string, args ...string) ddResult {
	tb.Helper()
	in, err := os.Create(filepath.Join(dir, "dd.stdin"))
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "dd.stdout"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command("dd", args...)
	// POSIXLY_CORRECT would stop getopt permuting options and operands.
	cmd.Env = append(withoutVar(os.Environ(), "POSIXLY_CORRECT"), "LC_ALL=C")
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &stderr
	var r ddResult
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			tb.Fatalf("dd %q: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		line, ok := strings.CutPrefix(line, "dd: ")
		switch {
		case ok && (line == zeroMultiplierWarning || line == appendWarning):
			r.warnings = append(r.warnings, line)
		case r.first == "":
			r.first = line
		}
	}
	return r
}

func withoutVar(env []string, name string) []string {
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// randomSeed returns def, or DDARGS_SEED when set, so the random
// differential tests can explore more inputs: DDARGS_SEED=7 go test.
func randomSeed(tb testing.TB, def uint64) uint64 {
	tb.Helper()
	v := os.Getenv("DDARGS_SEED")
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		tb.Fatalf("DDARGS_SEED=%q: %v", v, err)
	}
	tb.Logf("DDARGS_SEED=%d", n)
	return n
}
