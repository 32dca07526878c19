package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// runIn runs bin with args in dir, stdin fed from a pipe with in (closed
// at once when in is empty), stdout a pipe, and returns what came out.
func runIn(t *testing.T, bin, dir, in string, args ...string) result {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.WriteString(in)
		w.Close()
	}()
	defer r.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = r
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitStatus(t, cmd.Run())
	return result{stdout.Bytes(), stderr.String(), code}
}

// fileTree makes the files TestFilesLikePV copies: a, b, an empty file, a
// file named -dash, a 3 MiB random file and a directory d.
func fileTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"a": []byte("hello\n"), "b": []byte("world\n"), "empty": nil, "-dash": []byte("dash\n"),
		"big": randomData(rand.New(rand.NewPCG(3, 4)), 3<<20),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A socket: stat works, open does not (ENXIO), even for root.
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return dir
}

// TestFilesLikePV runs pv 1.6.20 and pvcat on the same FILE operands and
// compares stdout (byte for byte) and the exit status; pvcat's messages
// name the file, as pv's do. Where pv is not installed, pvcat is checked
// against the expected output alone.
func TestFilesLikePV(t *testing.T) {
	bin := testutil.Tool(t, "pvcat")
	_, err := exec.LookPath("pv")
	havePV := err == nil
	if !havePV && testutil.InCI() {
		t.Fatal("pv is not installed")
	}
	dir := fileTree(t)
	big, err := os.ReadFile(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	const piped = "piped\n"
	stat := func(name string) string { return "pvcat: stat " + name + ": no such file or directory\n" }
	for _, tc := range []struct {
		name   string
		args   []string
		out    string
		code   int
		pvCode int    // pv's status when it differs from pvcat's; 0: the same
		msg    string // pvcat's stderr, a regular expression
		last   bool   // -n: pv and pvcat end with the same line
		pvOut  string // pv's stdout when it differs from pvcat's
	}{
		{"two files", []string{"a", "b"}, "hello\nworld\n", 0, 0, ``, false, ""},
		{"stdin as -", []string{"-"}, piped, 0, 0, ``, false, ""},
		{"stdin between", []string{"a", "-", "b"}, "hello\n" + piped + "world\n", 0, 0, ``, false, ""},
		{"stdin twice", []string{"-", "a", "-"}, piped + "hello\n", 0, 0, ``, false, ""},
		{"empty file", []string{"empty", "a", "empty"}, "hello\n", 0, 0, ``, false, ""},
		{"after --", []string{"--", "-dash", "a"}, "dash\nhello\n", 0, 0, ``, false, ""},
		{"big file", []string{"a", "big", "b"}, "hello\n" + string(big) + "world\n", 0, 0, ``, false, ""},
		{"missing in the middle", []string{"a", "nope", "b"}, "hello\nworld\n", 2, 0, regexp.QuoteMeta(stat("nope")), false, ""},
		{"missing first", []string{"nope", "a"}, "hello\n", 2, 0, regexp.QuoteMeta(stat("nope")), false, ""},
		{"missing only", []string{"nope"}, "", 10, 0, regexp.QuoteMeta(stat("nope")), false, ""},
		{"all missing", []string{"nope", "nope2"}, "", 10, 0, regexp.QuoteMeta(stat("nope") + stat("nope2")), false, ""},
		// A FILE that fails to open once the copy runs: pvcat goes on
		// with the others, as for a missing one, and counts it as one
		// that could not be opened (10 when none could); pv 1.6.20 stops
		// there with status 2.
		{"cannot open", []string{"a", "sock", "b"}, "hello\nworld\n", 2, 0, `^pvcat: open sock: no such device or address\n$`, false, "hello\n"},
		{"none opens", []string{"sock", "nope"}, "", 10, 2, `^` + regexp.QuoteMeta(stat("nope")) + `pvcat: open sock: no such device or address\n$`, false, ""},
		// pv says "d: read failed: Is a directory" and exits 16 (its
		// transfer error); pvcat's read errors are 1.
		{"directory", []string{"a", "d", "b"}, "hello\nworld\n", 1, 16, `^pvcat: read d: is a directory\n$`, false, ""},
		{"stop at -s", []string{"-S", "-s", "3", "a", "b"}, "hel", 0, 0, ``, false, ""},
		{"stop in the second file", []string{"-S", "-s", "8", "a", "b"}, "hello\nwo", 0, 0, ``, false, ""},
		{"stop in a big file", []string{"-S", "-s", "2M", "a", "big", "b"}, "hello\n" + string(big[:2<<20-6]), 0, 0, ``, false, ""},
		{"stop at the files' size", []string{"-S", "a", "b"}, "hello\nworld\n", 0, 0, ``, false, ""},
		{"buffer size 0", []string{"-B", "0", "a", "b"}, "hello\nworld\n", 0, 0, ``, false, ""},
		{"buffer size 1", []string{"-B", "1", "a", "-", "b"}, "hello\n" + piped + "world\n", 0, 0, ``, false, ""},
		{"numeric from the files' size", []string{"-n", "a", "b"}, "hello\nworld\n", 0, 0, `^100\n$`, true, ""},
		{"numeric bytes", []string{"-nb", "a", "nope", "b"}, "hello\nworld\n", 2, 0, `^` + regexp.QuoteMeta(stat("nope")) + `12\n$`, true, ""},
		{"numeric stop", []string{"-n", "-S", "-s", "3", "a"}, "hel", 0, 0, `^100\n$`, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !regexp.MustCompile(`^-n`).MatchString(args[0]) {
				args = append([]string{"-q"}, args...)
			}
			got := runIn(t, bin, dir, piped, args...)
			msg := regexp.MustCompile(tc.msg)
			if tc.msg == "" {
				msg = regexp.MustCompile(`^$`)
			}
			if string(got.stdout) != tc.out || got.code != tc.code || !msg.MatchString(got.stderr) {
				t.Fatalf("pvcat %v: exit %d, stderr %q, stdout %d bytes %q; want %d, %q, %d bytes",
					args, got.code, got.stderr, len(got.stdout), head(got.stdout), tc.code, tc.msg, len(tc.out))
			}
			if !havePV {
				return
			}
			pv := runIn(t, "pv", dir, piped, args...)
			want := tc.code
			if tc.pvCode != 0 {
				want = tc.pvCode
			}
			wantOut := got.stdout
			if tc.pvOut != "" {
				wantOut = []byte(tc.pvOut)
			}
			if !bytes.Equal(pv.stdout, wantOut) || pv.code != want || (pv.stderr == "") != (got.stderr == "") {
				t.Fatalf("pv %v: exit %d, stderr %q, stdout %d bytes; pvcat: exit %d, stderr %q, %d bytes",
					args, pv.code, pv.stderr, len(pv.stdout), got.code, got.stderr, len(got.stdout))
			}
			if tc.last && lastLine(pv.stderr) != lastLine(got.stderr) {
				t.Fatalf("pv %v ends with %q, pvcat with %q", args, lastLine(pv.stderr), lastLine(got.stderr))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 40)] }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestRunFiles runs pvcat in the process on FILE operands: -X reads and
// counts without writing, errors as JSON lines when JSON goes to stderr,
// the "done" of the last record, and the exit status of missing FILEs.
func TestRunFiles(t *testing.T) {
	dir := fileTree(t)
	in := func(name string) string { return filepath.Join(dir, name) }
	nope := in("nope")
	tsRE := `"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`
	for _, tc := range []struct {
		name     string
		args     []string
		out      string
		stderr   string // regular expression
		code     int
		reported bool // run showed the error itself
	}{
		{"discard", []string{"-X", "-nb", in("a"), in("b")}, "", `^12\n$`, 0, false},
		{"discard stop", []string{"-X", "-nb", "-S", "-s", "1M", in("big")}, "", `^1048576\n$`, 0, false},
		{"plain error", []string{"-q", in("a"), nope}, "hello\n", `^pvcat: stat ` + regexp.QuoteMeta(nope) + `: no such file or directory\n$`, 2, true},
		{"json error", []string{"--json", nope, in("a")}, "hello\n",
			`^\{` + tsRE + `,"error":"stat ` + regexp.QuoteMeta(nope) + `: no such file or directory"\}\n` +
				`\{` + tsRE + `,"elapsed":[0-9.]+,"bytes":6,.*"size":6,"percent":100,"eta":0,"done":false\}\n$`, 2, true},
		{"json read error", []string{"--json", in("d")}, "",
			`^\{` + tsRE + `,"error":"read ` + regexp.QuoteMeta(in("d")) + `: is a directory"\}\n\{` + tsRE + `,.*"done":false\}\n$`, 1, true},
		{"json done", []string{"--json", in("a"), in("b")}, "hello\nworld\n", `^\{` + tsRE + `,.*"bytes":12,.*"done":true\}\n$`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb, nil)
			if out.String() != tc.out || !regexp.MustCompile(tc.stderr).MatchString(errb.String()) || exitCode(err) != tc.code {
				t.Fatalf("run %v: %v (exit %d), stdout %q, stderr %q; want exit %d, %q, %s",
					tc.args, err, exitCode(err), out.String(), errb.String(), tc.code, tc.out, tc.stderr)
			}
			if reported := errors.As(err, new(reportedError)); reported != tc.reported {
				t.Fatalf("run %v: %v; shown by run %v, want %v", tc.args, err, reported, tc.reported)
			}
		})
	}
}

// TestRunStallJSON checks that a stall is reported as a JSON line when
// JSON goes to stderr, so the file stays JSON, and as text otherwise.
func TestRunStallJSON(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // stderr after the records, a regular expression
	}{
		{[]string{"--json", "--stall", "0.2"}, `\{"ts":"[^"]+","error":"stalled: no data moved for 200ms \(3 bytes copied\)"\}\n$`},
		{[]string{"-q", "--stall", "0.2"}, `^pvcat: stalled: no data moved for 200ms \(3 bytes copied\)\n$`},
	} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pw.WriteString("abc")
		var out, errb bytes.Buffer
		done := make(chan error, 1)
		go func() { done <- run(context.Background(), tc.args, pr, &out, &errb, nil) }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: no stall after 10 s", tc.args)
		}
		pw.Close()
		pr.Close()
		reported := errors.As(err, new(reportedError))
		text := errb.String()
		if !reported && err != nil {
			text += "pvcat: " + err.Error() + "\n" // as main prints it
		}
		if exitCode(err) != 1 || reported != (tc.args[0] == "--json") || !regexp.MustCompile(tc.want).MatchString(text) {
			t.Errorf("%v: %v (exit %d, shown %v), stderr %q", tc.args, err, exitCode(err), reported, text)
		}
		if tc.args[0] == "--json" {
			for _, l := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
				if !strings.HasPrefix(l, `{"ts":"`) || !strings.HasSuffix(l, "}") {
					t.Errorf("%v: a line that is no JSON record: %q", tc.args, l)
				}
			}
		}
	}
}

// TestSameFileLikePV checks `pvcat self a >> self` against pv: a FILE that
// is the output file is reported, and the copy stops there with status 4
// (6 when a FILE was missing too), so it never feeds on its own output.
func TestSameFileLikePV(t *testing.T) {
	bin := testutil.Tool(t, "pvcat")
	tools := []string{bin}
	if _, err := exec.LookPath("pv"); err == nil {
		tools = append(tools, "pv")
	}
	dir := fileTree(t)
	for _, tc := range []struct {
		args []string // "self" is the output file
		out  string   // what self holds after
		code int
	}{
		{[]string{"self", "a"}, "self\n", 4},
		{[]string{"a", "self", "b"}, "self\nhello\n", 4},
		{[]string{"a", "nope", "self"}, "self\nhello\n", 6},
		{[]string{"a", "-"}, "self\nhello\n", 0}, // stdin (empty here) is not checked, as in pv
	} {
		for _, tool := range tools {
			self := filepath.Join(dir, "self")
			if err := os.WriteFile(self, []byte("self\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(self, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool, append([]string{"-q"}, tc.args...)...)
			cmd.Dir, cmd.Stdout = dir, out
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			code := exitStatus(t, cmd.Run())
			out.Close()
			got, err := os.ReadFile(self)
			if err != nil {
				t.Fatal(err)
			}
			// pvcat words it as cat does; pv puts the name last.
			msg := regexp.MustCompile(`(^|\n)pvcat: self: input file is output file\n$`)
			if tool == "pv" {
				msg = regexp.MustCompile(`(^|\n)pv: input file is output file: self\n$`)
			}
			if tc.code == 0 {
				msg = regexp.MustCompile(`^$`)
			}
			if string(got) != tc.out || code != tc.code || !msg.MatchString(stderr.String()) {
				t.Errorf("%s %v >> self: exit %d, stderr %q, self %q; want %d, %q", filepath.Base(tool), tc.args, code, stderr.String(), got, tc.code, tc.out)
			}
		}
	}
}

// TestRunUSR1JSON checks that with JSON on stderr SIGUSR1 writes a record,
// not dd's line, so the stream stays JSON.
func TestRunUSR1JSON(t *testing.T) {
	pr, pw := io.Pipe()
	usr1 := make(chan os.Signal, 1)
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	// -i 1h: no record per interval comes before the end.
	go func() { done <- run(context.Background(), []string{"--json", "-i", "1h"}, pr, &out, &errb, usr1) }()
	pw.Write([]byte("abc"))
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errb.String(), `"bytes":3,`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no record of 3 bytes after SIGUSR1: %q", errb.String())
		}
		select {
		case usr1 <- os.Interrupt:
		default:
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
		if !regexp.MustCompile(`^\{"ts":"[^"]+","elapsed":.*\}$`).MatchString(l) {
			t.Errorf("a line that is no JSON record: %q", l)
		}
	}
}
