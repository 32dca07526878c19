package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/buildinfo"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		in       string
		out, err string
	}{
		{"numeric percent", []string{"-n", "-s", "11"}, "hello world", "hello world", "100\n"},
		{"numeric bytes", []string{"-nb"}, "hello world", "hello world", "11\n"},
		{"stop at size", []string{"-nS", "-s", "5"}, "hello world", "hello", "100\n"},
		{"quiet", []string{"-q"}, "x", "x", ""},
		{"not a terminal", nil, "x", "x", ""},
		{"empty", []string{"-nb"}, "", "", "0\n"},
		{"json", []string{"--json", "-s", "2", "-N", "n"}, "ab", "ab",
			`{"ts":T,"name":"n","elapsed":E,"bytes":2,"rate":R,"avg_rate":A,"size":2,"percent":100,"eta":0,"done":true}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, strings.NewReader(tt.in), &out, &errb, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			got := errb.String()
			if strings.HasPrefix(tt.err, "{") {
				// Times and rates vary: blank them out.
				for _, k := range []string{`"ts":`, `"elapsed":`, `"rate":`, `"avg_rate":`} {
					if i := strings.Index(got, k); i >= 0 {
						j := i + len(k) + strings.IndexByte(got[i+len(k):], ',')
						got = got[:i+len(k)] + map[string]string{`"ts":`: "T", `"elapsed":`: "E", `"rate":`: "R", `"avg_rate":`: "A"}[k] + got[j:]
					}
				}
			}
			if out.String() != tt.out || got != tt.err {
				t.Errorf("run %v: stdout %q, stderr %q; want %q, %q", tt.args, out.String(), got, tt.out, tt.err)
			}
		})
	}
}

func TestRunUSR1(t *testing.T) {
	pr, pw := io.Pipe()
	usr1 := make(chan os.Signal, 1)
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), []string{"-q"}, pr, &out, &errb, usr1) }()
	pw.Write([]byte("abc"))
	// The copy counts the bytes just after writing them: ask until the
	// report shows them.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errb.String(), "3 bytes copied, "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no report of 3 bytes after SIGUSR1: %q", errb.String())
		}
		select {
		case usr1 <- os.Interrupt: // any value: run only counts them
		default:
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
		if !ddLine.MatchString(l) {
			t.Errorf("report %q is not dd's bytes line", l)
		}
	}
}

func TestRunWait(t *testing.T) {
	for _, wait := range []bool{false, true} {
		args := []string{"-ntb"}
		if wait {
			args = append(args, "-W")
		}
		pr, pw := io.Pipe()
		go func() {
			time.Sleep(500 * time.Millisecond)
			pw.Write([]byte("late"))
			pw.Close()
		}()
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, pr, &out, &errb, nil); err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(errb.String())
		if len(f) < 2 || f[len(f)-1] != "4" {
			t.Fatalf("%v: stderr %q, want a last line ending in 4 bytes", args, errb.String())
		}
		elapsed, err := strconv.ParseFloat(f[len(f)-2], 64)
		if err != nil {
			t.Fatalf("%v: stderr %q", args, errb.String())
		}
		if wait && elapsed >= 0.5 || !wait && elapsed < 0.5 {
			t.Errorf("%v: elapsed %v after a first byte at 0.5 s", args, elapsed)
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb testutil.SyncBuffer
	go func() { done <- run(ctx, []string{"-nb"}, pr, &out, &errb, nil) }()
	pw.Write([]byte("abc"))
	cancel()
	err := <-done
	// The last line shows 0 or 3 bytes, depending on whether the copy
	// counted them before the cancel.
	if !errors.Is(err, errInterrupted) || exitCode(err) != 130 || errb.String() != "3\n" && errb.String() != "0\n" {
		t.Errorf("cancelled run: %v (exit %d), stderr %q; want interrupted, 130, a last line", err, exitCode(err), errb.String())
	}
}

// epipeWriter is stdout with its reader gone: every write fails with EPIPE,
// as it does once SIGPIPE is ignored.
type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

func TestRunReaderGone(t *testing.T) {
	var errb bytes.Buffer
	err := run(context.Background(), []string{"-n", "-s", "10"}, strings.NewReader("hello"), epipeWriter{}, &errb, nil)
	if err != nil || exitCode(err) != 0 || errb.String() != "0\n" {
		t.Errorf("run into a gone reader: %v (exit %d), stderr %q; want nil, 0, the last line", err, exitCode(err), errb.String())
	}
}

func TestRunVersion(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("data")
	err := run(context.Background(), []string{"-V"}, in, &out, &errb, nil)
	if err != nil || out.String() != buildinfo.Line("pvcat")+"\n" || errb.Len() != 0 || in.Len() != 4 {
		t.Errorf("-V: %v, stdout %q, stderr %q, %d bytes left; want the version line only", err, out.String(), errb.String(), in.Len())
	}
}

func TestRunPidfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pvcat.pid")
	pr, pw := io.Pipe()
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), []string{"-q", "-P", p}, pr, &out, &errb, nil) }()
	pw.Write([]byte("abc")) // run is copying: the file is there
	if b, err := os.ReadFile(p); err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("pid file during the copy: %q, %v; want %d and a newline", b, err, os.Getpid())
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("pid file after the copy: %v, want it removed", err)
	}
	// As pv: a pid file that cannot be written stops pvcat before the
	// copy, with status 1.
	var out2, errb2 bytes.Buffer
	err := run(context.Background(), []string{"-q", "-P", filepath.Join(p, "x")}, strings.NewReader("abc"), &out2, &errb2, nil)
	if err == nil || exitCode(err) != 1 || !strings.HasPrefix(err.Error(), "-P: open ") || out2.Len() != 0 {
		t.Errorf("unwritable pid file: %v (exit %d), %d bytes copied; want an error, 1, nothing copied", err, exitCode(err), out2.Len())
	}
}

func TestRunDelay(t *testing.T) {
	// A copy over before -D's time shows nothing at all, as pv's; the
	// JSON record at the end is still written.
	for _, args := range [][]string{{"-n", "-D", "5"}, {"-f", "-D", "5"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader("hello"), &out, &errb, nil); err != nil {
			t.Fatal(err)
		}
		if errb.Len() != 0 || out.String() != "hello" {
			t.Errorf("%v on a short copy: stdout %q, stderr %q; want the data, no display", args, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--json", "-D", "5"}, strings.NewReader("hello"), &out, &errb, nil); err != nil ||
		!strings.HasPrefix(errb.String(), `{"ts":"`) || !strings.Contains(errb.String(), `,"elapsed":`) || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("--json -D 5: %v, stderr %q; want the last record", err, errb.String())
	}

	// A longer copy: the first line comes at -D's time (not the
	// interval's), then one per interval, and the last line at the end.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			pw.Write([]byte("x"))
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	errb.Reset()
	if err := run(context.Background(), []string{"-ntb", "-D", "0.35", "-i", "0.2"}, pr, &out, &errb, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	var times []float64
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("line %q in %q", l, errb.String())
		}
		times = append(times, must(strconv.ParseFloat(f[0], 64)))
	}
	if len(times) < 3 || times[0] < 0.35 || times[0] > 0.5 || times[1]-times[0] < 0.15 || lines[len(lines)-1][len(lines[len(lines)-1])-1] != '8' {
		t.Errorf("-ntb -D 0.35 -i 0.2 over 0.8 s: %q; want a first line at 0.35 s, then every 0.2 s, and 8 bytes at the end", lines)
	}
}

func TestRunWidth(t *testing.T) {
	// The bar fills all but the last column of -w's width, whatever the
	// terminal (here none: -f) says.
	for _, w := range []int{60, 200} {
		var out, errb bytes.Buffer
		args := []string{"-f", "-w", strconv.Itoa(w), "-s", "10"}
		if err := run(context.Background(), args, strings.NewReader("hello"), &out, &errb, nil); err != nil {
			t.Fatal(err)
		}
		line := strings.TrimSuffix(strings.TrimPrefix(errb.String(), "\r"), "\n")
		if len(line) != w-1 || !strings.Contains(line, "=>") || !strings.Contains(line, " 50% ") {
			t.Errorf("-w %d: line %q is %d columns, want %d (all but the last) with the bar", w, line, len(line), w-1)
		}
	}
}
