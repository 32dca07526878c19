// Testsum reads `go test -json` and prints what a person needs from it: go
// test's own ok/FAIL line per package, the full output of every failed test
// (and of a package that failed outside any test, such as a build error or a
// panic in TestMain), then every skipped test with its reason, and last a
// line "N passed, N failed, N skipped".
//
// Synopsis:
//
//	go test -json ./... | go run ./internal/testenv/testsum
//
// It exits 1 if any test or package failed or the input ended mid-package
// (a killed go test), 2 on unreadable input, and 0 otherwise. scripts/test.sh
// uses it so that a run where everything needing root skipped says so at the
// end instead of printing only ok lines.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

func main() {
	code, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// event is one line of `go test -json` (cmd/test2json), with the build
// events go test adds for packages that do not compile.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// skip is one skipped test and the reason it logged.
type skip struct{ pkg, test, reason string }

// summary accumulates the results of one run.
type summary struct {
	out                     io.Writer
	passed, failed, skipped int
	skips                   []skip
	// top holds, per package and top-level test, every output line of the
	// test and its subtests in order, printed if the test fails.
	top map[string][]string
	// own holds each test's own output lines, read for a skip's reason.
	own map[string][]string
	// pkg holds each package's output outside any test.
	pkg map[string][]string
	// pkgFailedTests counts failed tests per package, so a package that
	// failed without one (a build error, a panic in TestMain) counts too.
	pkgFailedTests map[string]int
	open           map[string]bool
}

func run(r io.Reader, w io.Writer) (int, error) {
	s := &summary{out: w, top: map[string][]string{}, own: map[string][]string{},
		pkg: map[string][]string{}, pkgFailedTests: map[string]int{}, open: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// go test prints some errors (bad flags, no packages) as text.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		return 2, fmt.Errorf("read go test -json output: %w", err)
	}
	return s.finish(), nil
}

func (s *summary) add(e event) {
	if e.Action == "build-output" {
		s.pkg[e.ImportPath] = append(s.pkg[e.ImportPath], e.Output)
		return
	}
	if e.Action == "build-fail" {
		fmt.Fprint(s.out, strings.Join(s.pkg[e.ImportPath], ""))
		delete(s.pkg, e.ImportPath)
		return
	}
	if e.Test == "" {
		s.pkgEvent(e)
		return
	}
	topName, _, _ := strings.Cut(e.Test, "/")
	topKey, key := e.Package+"\x00"+topName, e.Package+"\x00"+e.Test
	switch e.Action {
	case "output":
		s.top[topKey] = append(s.top[topKey], e.Output)
		s.own[key] = append(s.own[key], e.Output)
		return
	case "pass":
		s.passed++
	case "fail":
		s.failed++
		s.pkgFailedTests[e.Package]++
	case "skip":
		s.skipped++
		s.skips = append(s.skips, skip{e.Package, e.Test, reason(s.own[key])})
	default:
		return
	}
	delete(s.own, key)
	if e.Test == topName {
		if e.Action == "fail" {
			fmt.Fprint(s.out, strings.Join(s.top[topKey], ""))
		}
		delete(s.top, topKey)
	}
}

// pkgEvent handles an event outside any test: the package's start, its
// own output (go test's ok/FAIL line, a panic outside a test) and its end.
func (s *summary) pkgEvent(e event) {
	switch e.Action {
	case "start":
		s.open[e.Package] = true
	case "output":
		s.pkg[e.Package] = append(s.pkg[e.Package], e.Output)
	case "pass", "skip":
		for _, l := range s.pkg[e.Package] {
			// "ok  \tpkg\t0.1s" or "?   \tpkg\t[no test files]"
			if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "? ") {
				fmt.Fprint(s.out, l)
			}
		}
		s.endPkg(e.Package)
	case "fail":
		fmt.Fprint(s.out, strings.Join(s.pkg[e.Package], ""))
		if s.pkgFailedTests[e.Package] == 0 {
			s.failed++
		}
		s.endPkg(e.Package)
	}
}

func (s *summary) endPkg(p string) {
	delete(s.pkg, p)
	delete(s.open, p)
	for k, lines := range s.top {
		// A test still running when the package ended (a timeout or a
		// crash) has its output shown.
		if strings.HasPrefix(k, p+"\x00") {
			fmt.Fprint(s.out, strings.Join(lines, ""))
			delete(s.top, k)
		}
	}
}

// logPrefix is the "file_test.go:12: " that t.Log puts before a message.
var logPrefix = regexp.MustCompile(`^[\w.-]+\.go:\d+: `)

// reason returns a skipped test's own log lines, without go test's
// "=== RUN" and "--- SKIP" lines, as one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		parts = append(parts, logPrefix.ReplaceAllString(t, ""))
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func (s *summary) finish() int {
	var unfinished []string
	for p := range s.open {
		unfinished = append(unfinished, p)
	}
	sort.Strings(unfinished)
	for _, p := range unfinished {
		// go test was killed or its output cut: show what there is.
		s.endPkg(p)
		fmt.Fprintf(s.out, "FAIL\t%s\t(no result: go test output ended)\n", p)
		s.failed++
	}
	if len(s.skips) > 0 {
		fmt.Fprintf(s.out, "\nSkipped tests (%d):\n", len(s.skips))
		for _, k := range s.skips {
			fmt.Fprintf(s.out, "SKIP %s %s: %s\n", k.pkg, k.test, k.reason)
		}
	}
	fmt.Fprintf(s.out, "%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if s.failed > 0 {
		return 1
	}
	return 0
}
