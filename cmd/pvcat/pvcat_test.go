package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// result is what a pvcat process did.
type result struct {
	stdout []byte
	stderr string
	code   int // exit status, or -signal when killed
}

// exitStatus returns the exit code of a finished command, or minus the
// signal that killed it.
func exitStatus(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("running pvcat: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return ee.ExitCode()
}

// randomData returns n pseudo-random bytes.
func randomData(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// pipeIn returns the read end of a pipe fed with data in random-sized
// chunks (a pause now and then), closed at the end.
func pipeIn(t *testing.T, data []byte, rng *rand.Rand) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	seed := rng.Uint64()
	go func() {
		defer w.Close()
		rng := rand.New(rand.NewPCG(seed, 7))
		for len(data) > 0 {
			n := min(1+rng.IntN(200<<10), len(data))
			if _, err := w.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
			if rng.IntN(20) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	return r
}

// runPvcat runs the pvcat binary with stdin and returns what came out. Its
// stdout is a pipe, so the splice path runs when stdin is one too.
func runPvcat(t *testing.T, stdin *os.File, args ...string) result {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, "pvcat"), args...)
	cmd.Stdin = stdin
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = outW, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	out, rerr := io.ReadAll(outR)
	outR.Close()
	code := exitStatus(t, cmd.Wait())
	if rerr != nil {
		t.Fatal(rerr)
	}
	return result{out, stderr.String(), code}
}

func TestSameBytesOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dir := t.TempDir()
	for i := 0; i < 12; i++ {
		size := []int{0, 1, rng.IntN(4096), rng.IntN(3 << 20), 1<<20 + rng.IntN(8<<20)}[i%5]
		data := randomData(rng, size)
		var args []string
		if i%2 == 1 {
			args = append(args, "-C")
		}
		want := data
		if i%3 == 2 && size > 0 {
			stop := rng.IntN(size) + 1
			args = append(args, "-S", "-s", strconv.Itoa(stop))
			want = data[:stop]
		} else if i%3 == 1 {
			args = append(args, "-s", strconv.Itoa(size+rng.IntN(100)))
		}
		if rng.IntN(2) == 0 {
			args = append(args, "-B", strconv.Itoa(1+rng.IntN(1<<20)))
		}
		for _, from := range []string{"pipe", "file"} {
			var in *os.File
			if from == "pipe" {
				in = pipeIn(t, data, rng)
			} else {
				p := filepath.Join(dir, fmt.Sprint("in", i))
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				in = f
			}
			r := runPvcat(t, in, append(args, "-q")...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("pvcat %v < %s: exit %d, stderr %q", args, from, r.code, r.stderr)
			}
			if sha256.Sum256(r.stdout) != sha256.Sum256(want) {
				t.Fatalf("pvcat %v < %s (%d bytes): %d bytes out, digests differ", args, from, size, len(r.stdout))
			}
		}
	}
}

// slowFeed returns a pipe fed with chunk bytes every step, count times.
func slowFeed(t *testing.T, chunk, count int, step time.Duration) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		defer w.Close()
		buf := make([]byte, chunk)
		for i := 0; i < count; i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
			time.Sleep(step)
		}
	}()
	return r
}

// TestNumericLikePV runs pv -n and pvcat -n on the same slowly fed input
// with the same flags and compares what they print: the shape of every
// line, that values never go back, about as many lines, the same last line.
func TestNumericLikePV(t *testing.T) {
	testutil.NeedCmd(t, "pv")
	const chunk, count = 100_000, 25 // 2.5 MB over 2.5 s
	total := strconv.Itoa(chunk * count)
	tests := []struct {
		name string
		args []string
		line *regexp.Regexp
		last string // expected last value; "" to skip (pv's unknown-size count)
	}{
		{"percent", []string{"-n", "-s", total}, regexp.MustCompile(`^(\d+)$`), "100"},
		{"timer bytes", []string{"-ntb"}, regexp.MustCompile(`^\d+\.\d{4} (\d+)$`), total},
		{"bytes with size", []string{"-nb", "-s", total}, regexp.MustCompile(`^(\d+)$`), total},
		{"unknown size", []string{"-n"}, regexp.MustCompile(`^(\d*[02468])$`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-i", "0.5"}, tt.args...)
			got := runBoth(t, args, func() *os.File { return slowFeed(t, chunk, count, 100*time.Millisecond) })
			for name, lines := range got {
				prev := int64(-1)
				for i, l := range lines {
					m := tt.line.FindStringSubmatch(l)
					if m == nil {
						t.Fatalf("%s line %d %q does not match %v; all: %q", name, i, l, tt.line, lines)
					}
					v, _ := strconv.ParseInt(m[1], 10, 64)
					if v < prev {
						t.Errorf("%s: value went back from %d to %d: %q", name, prev, v, lines)
					}
					if tt.last == "" && v != prev+2 && !(prev == -1 && v == 2) {
						t.Errorf("%s: unknown-size count should step by 2: %q", name, lines)
					}
					prev = v
				}
				if tt.last != "" && prev != must(strconv.ParseInt(tt.last, 10, 64)) {
					t.Errorf("%s: last value %d, want %s: %q", name, prev, tt.last, lines)
				}
			}
			if d := len(got["pv"]) - len(got["pvcat"]); d < -2 || d > 2 {
				t.Errorf("pv printed %d lines, pvcat %d:\npv    %q\npvcat %q", len(got["pv"]), len(got["pvcat"]), got["pv"], got["pvcat"])
			}
		})
	}
}

// runBoth runs pv and pvcat at the same time with args, each on its own
// input from feed, and returns the lines each printed on stderr, by "pv"
// and "pvcat".
func runBoth(t *testing.T, args []string, feed func() *os.File) map[string][]string {
	t.Helper()
	type out struct {
		lines []string
		err   error
	}
	results := make(chan out, 2)
	for _, tool := range []string{"pv", testutil.Tool(t, "pvcat")} {
		in := feed()
		go func() {
			cmd := exec.Command(tool, args...)
			cmd.Stdin = in
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			results <- out{append([]string{tool}, lines...), err}
		}()
	}
	got := map[string][]string{}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("%s %v: %v", r.lines[0], args, r.err)
		}
		got[filepath.Base(r.lines[0])] = r.lines[1:]
	}
	return got
}

// TestNumericFoldLikePV checks pv -n's fold: the percentage p prints as
// 200-p above 100 (for dialog --gauge), both for pv's unknown-size count
// and for an input that outgrows -s.
func TestNumericFoldLikePV(t *testing.T) {
	testutil.NeedCmd(t, "pv")
	ints := func(t *testing.T, name string, lines []string) []int64 {
		var v []int64
		for _, l := range lines {
			n, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				t.Fatalf("%s: line %q is not a number: %q", name, l, lines)
			}
			v = append(v, n)
		}
		return v
	}
	t.Run("unknown size", func(t *testing.T) {
		t.Parallel()
		// 1000 bytes every 20 ms for 6 s, a line every 0.1 s: the count
		// passes 100 and comes back down, 2 at a time. A line that follows
		// no new bytes (the feeder stalled on a loaded machine) repeats
		// the count, in pv as in pvcat.
		got := runBoth(t, []string{"-n", "-i", "0.1"}, func() *os.File { return slowFeed(t, 1000, 300, 20*time.Millisecond) })
		for name, lines := range got {
			v := ints(t, name, lines)
			top := false
			for i, n := range v {
				if n < 0 || n > 100 {
					t.Fatalf("%s: value %d out of 0..100: %v", name, n, v)
				}
				top = top || n == 100
				if i == 0 {
					continue
				}
				if d := n - v[i-1]; d != 2 && d != -2 && d != 0 {
					t.Fatalf("%s: %d after %d, want a step of 2 (or none): %v", name, n, v[i-1], v)
				}
			}
			if !top || v[len(v)-1] >= 100 || len(v) < 55 {
				t.Errorf("%s: want the count to reach 100 and come back: %v", name, v)
			}
		}
	})
	t.Run("past the size", func(t *testing.T) {
		t.Parallel()
		// pv 1.6.20 prints 20 40 60 80 100 80 60 40 20 0 0 here.
		got := runBoth(t, []string{"-n", "-s", "500000", "-i", "0.3"}, func() *os.File { return slowFeed(t, 100_000, 10, 300*time.Millisecond) })
		for name, lines := range got {
			v := ints(t, name, lines)
			peak := 0
			for i, n := range v {
				if n > 100 {
					t.Fatalf("%s: value %d above 100: %v", name, n, v)
				}
				if n > v[peak] {
					peak = i
				}
				if i > peak && n > v[i-1] {
					t.Errorf("%s: %d after %d on the way down: %v", name, n, v[i-1], v)
				}
			}
			if v[peak] < 80 || v[len(v)-1] != 0 {
				t.Errorf("%s: want a rise to about 100 and an end at 0 (1 MB of a 500 kB size): %v", name, v)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// ddLine is GNU dd's bytes line as progress.BytesLine prints it.
var ddLine = regexp.MustCompile(`^(1 byte|\d+ bytes)( \([\d.]+ [kMGTPE]B, [\d.]+ [KMGTPE]iB\))? copied, [\d.e+-]+ s, ([\d.]+ [kMGTPE]?B/s|Infinity B/s)$`)

// TestSIGUSR1Storm sends SIGUSR1 in a tight loop from the moment pvcat
// starts until it exits: it must never die of it, copy everything, and
// print only dd's bytes lines.
func TestSIGUSR1Storm(t *testing.T) {
	// A signal that lands between fork and the Go runtime's own handler
	// installation hits the default action, which kills any program, dd
	// too; an inherited SIG_IGN covers that window, as it would for a
	// process started by a supervisor that ignores SIGUSR1. From then on
	// pvcat handles the signal itself.
	bin := testutil.Tool(t, "pvcat")
	rng := rand.New(rand.NewPCG(5, 6))
	data := randomData(rng, 6<<20)
	for _, args := range [][]string{{"-q", "-L", "4M"}, {"-f", "-L", "8M", "-C"}, {"-n"}} {
		ignoreUSR1(t)
		cmd := exec.Command(bin, args...)
		cmd.Stdin = pipeIn(t, data, rng)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		sent := 0
		var err error
	loop:
		for {
			select {
			case err = <-done:
				break loop
			default:
				if cmd.Process.Signal(syscall.SIGUSR1) == nil {
					sent++
				}
			}
		}
		if code := exitStatus(t, err); code != 0 {
			t.Fatalf("pvcat %v under %d SIGUSR1: exit %d, stderr %q", args, sent, code, tail(stderr.String()))
		}
		if !bytes.Equal(stdout.Bytes(), data) {
			t.Fatalf("pvcat %v: %d bytes out of %d", args, stdout.Len(), len(data))
		}
		reports := 0
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if args[0] == "-f" {
			lines = lines[:len(lines)-1] // the final bar
		}
		for _, l := range lines {
			// -f draws its bar with \r before the report; -n adds its
			// percent lines.
			l = l[strings.LastIndexByte(l, '\r')+1:]
			if strings.TrimSpace(l) == "" || args[0] == "-n" && regexp.MustCompile(`^\d+$`).MatchString(l) {
				continue
			}
			if !ddLine.MatchString(l) {
				t.Fatalf("pvcat %v: line %q is not dd's bytes line", args, l)
			}
			reports++
		}
		if reports == 0 {
			t.Errorf("pvcat %v: %d signals sent, no report", args, sent)
		}
		t.Logf("pvcat %v: %d signals sent, %d reports", args, sent, reports)
	}
}

func ignoreUSR1(t *testing.T) {
	t.Helper()
	signalIgnore(syscall.SIGUSR1)
}

func tail(s string) string {
	if len(s) > 500 {
		return "..." + s[len(s)-500:]
	}
	return s
}

// TestRateLimitAccuracy measures -L over 5 s: the bytes that arrive after
// the first read, over the time from the first read to the last, must be
// within 3 % of the asked rate. (Timing from the first byte leaves process
// start-up, slow on a loaded machine, out of the limiter's account.)
func TestRateLimitAccuracy(t *testing.T) {
	testutil.NeedLong(t, "takes 10 s")
	const rate = 2 << 20 // -L 2M, 5 s worth
	bin := testutil.Tool(t, "pvcat")
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, make([]byte, 5*rate), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-q", "-L", "2M"}, {"-q", "-C", "-L", "2M"}} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdin, cmd.Stdout = f, outW
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		outW.Close()
		var first, last time.Time
		var total, firstN int
		buf := make([]byte, 1<<20)
		for {
			n, err := outR.Read(buf)
			if n > 0 {
				last = time.Now()
				if total == 0 {
					first, firstN = last, n
				}
				total += n
			}
			if err != nil {
				break
			}
		}
		outR.Close()
		if code := exitStatus(t, cmd.Wait()); code != 0 || total != 5*rate {
			t.Fatalf("pvcat %v: exit %d, %d bytes, stderr %q", args, code, total, stderr.String())
		}
		span := last.Sub(first)
		got := float64(total-firstN) / span.Seconds()
		if got < rate*0.97 || got > rate*1.03 {
			t.Errorf("pvcat %v: %.0f B/s over %v, want %d ±3%%", args, got, span, rate)
		}
		t.Logf("pvcat %v: %.4f of the asked rate over %v", args, got/rate, span)
	}
}

func TestStall(t *testing.T) {
	bin := testutil.Tool(t, "pvcat")
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("stuck writer", func(t *testing.T) {
		in, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		// Downstream never reads: the output pipe fills and stays full.
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer outR.Close()
		cmd := exec.Command(bin, "-q", "--stall", "1")
		cmd.Stdin, cmd.Stdout = in, outW
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err = cmd.Run()
		outW.Close()
		code := exitStatus(t, err)
		if code != 1 || !regexp.MustCompile(`^pvcat: stalled: no data moved for 1s \(\d+ bytes copied\)\n$`).MatchString(stderr.String()) {
			t.Fatalf("exit %d after %v, stderr %q; want 1 and the stall message", code, time.Since(start), stderr.String())
		}
	})
	t.Run("stuck reader", func(t *testing.T) {
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer inR.Close()
		defer inW.Close()
		inW.Write([]byte("some bytes, then nothing"))
		cmd := exec.Command(bin, "-q", "--stall", "0.5")
		cmd.Stdin = inR
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := exitStatus(t, cmd.Run())
		if code != 1 || stderr.String() != "pvcat: stalled: no data moved for 500ms (24 bytes copied)\n" || stdout.String() != "some bytes, then nothing" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})
}

func TestJSON(t *testing.T) {
	bin := testutil.Tool(t, "pvcat")
	const chunk, count = 100_000, 12
	for _, viaFD := range []bool{false, true} {
		args := []string{"--json", "-i", "0.2", "-s", strconv.Itoa(chunk * count)}
		cmd := exec.Command(bin, args...)
		cmd.Stdin = slowFeed(t, chunk, count, 50*time.Millisecond)
		var stderr, jsonOut bytes.Buffer
		cmd.Stderr = &stderr
		var jsonR, jsonW *os.File
		if viaFD {
			var err error
			jsonR, jsonW, err = os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.ExtraFiles = []*os.File{jsonW} // fd 3
			cmd.Args = append(cmd.Args, "--json-fd", "3")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if viaFD {
			jsonW.Close()
			io.Copy(&jsonOut, jsonR)
			jsonR.Close()
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pvcat %v: %v, %s", cmd.Args, err, stderr.String())
		}
		text := stderr.String()
		if viaFD {
			if text != "" {
				t.Errorf("--json-fd 3: stderr %q, want nothing", text)
			}
			text = jsonOut.String()
		}
		var recs []map[string]any
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
			}
			for _, k := range []string{"ts", "elapsed", "bytes", "rate", "avg_rate", "size", "percent", "eta", "done"} {
				if _, ok := m[k]; !ok {
					t.Errorf("record %s lacks %q", sc.Text(), k)
				}
			}
			if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["ts"])); err != nil || time.Since(ts) > time.Minute || !strings.HasSuffix(fmt.Sprint(m["ts"]), "Z") {
				t.Errorf("record %s: ts %v is not the time now, in UTC (%v)", sc.Text(), m["ts"], err)
			}
			recs = append(recs, m)
		}
		if len(recs) < 2 {
			t.Fatalf("%d records, want one per 0.2 s interval and a last one: %q", len(recs), text)
		}
		last := recs[len(recs)-1]
		if last["done"] != true || last["bytes"] != float64(chunk*count) || last["percent"] != float64(100) {
			t.Errorf("last record %v, want done, all bytes, 100%%", last)
		}
		for _, r := range recs[:len(recs)-1] {
			if r["done"] != false {
				t.Errorf("record before the last says done: %v", r)
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	bin := testutil.Tool(t, "pvcat")
	dir := t.TempDir()
	run := func(stdin *os.File, stdout io.Writer, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin, cmd.Stdout = stdin, stdout
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		return exitStatus(t, cmd.Run()), stderr.String()
	}
	try := "Try 'pvcat --help' for more information.\n"
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown option", []string{"--bogus"}, 2, "pvcat: unknown option '--bogus'\n" + try},
		{"unknown short option", []string{"-qk"}, 2, "pvcat: unknown option '-k'\n" + try},
		{"missing value", []string{"-q", "--stall"}, 2, "pvcat: option '--stall' requires an argument\n" + try},
		{"bad value", []string{"-L", "x"}, 2, "pvcat: invalid argument 'x' for '-L': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b\n" + try},
		{"unsupported", []string{"-F", "%b"}, 2, "pvcat: -F (--format) is not supported by pvcat\n" + try},
		{"-S without size", []string{"-S"}, 2, "pvcat: -S needs a size: -s SIZE, or FILEs (or stdin) that are regular files or block devices\n" + try},
	} {
		if code, msg := run(nil, io.Discard, tc.args...); code != tc.code || msg != tc.msg {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	var help bytes.Buffer
	if code, msg := run(nil, &help, "--help"); code != 0 || msg != "" || !strings.Contains(help.String(), "Exit status:\n  0    done") {
		t.Errorf("--help: exit %d, stderr %q, stdout %q", code, msg, help.String())
	}
	for _, arg := range []string{"-V", "--version", "-qV"} {
		var version bytes.Buffer
		if code, msg := run(nil, &version, arg); code != 0 || msg != "" || !regexp.MustCompile(`^pvcat \S.*\n$`).MatchString(version.String()) {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want 0 and one version line", arg, code, msg, version.String())
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if code, msg := run(d, io.Discard, "-q"); code != 1 || msg != "pvcat: read /dev/stdin: is a directory\n" {
		t.Errorf("reading a directory: exit %d, %q", code, msg)
	}
}

// TestReaderGone checks what pv 1.6.20 does when the reader downstream goes
// away (`pv < big | head -c 10` under set -o pipefail, or `pv big | head
// -c 1M`): it ends with status 0, no message, and its last display, from a
// file, a pipe or a FILE operand, on both copy paths. pvcat must do the
// same, and so must pv, where it is installed.
func TestReaderGone(t *testing.T) {
	tools := []string{testutil.Tool(t, "pvcat")}
	if _, err := exec.LookPath("pv"); err == nil {
		tools = append(tools, "pv")
	} else {
		testutil.Missing(t, "pv", "pv not on PATH: pvcat's behaviour is not checked against pv's")
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, make([]byte, 16<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		for _, args := range [][]string{{"-q"}, {"-q", "-C"}, {"-n"}, {"-n", "-C"}, {"-f"}, {"-q", "-L", "100M"}} {
			for _, from := range []string{"pipe", "file", "operand"} {
				// read is how much the reader takes before it goes: none
				// (closed from the start) or 10 bytes, like head -c 10.
				for _, read := range []int{0, 10} {
					name := fmt.Sprintf("%s %v < %s, reader takes %d", filepath.Base(tool), args, from, read)
					var in *os.File
					args := args
					switch from {
					case "pipe":
						in = pipeIn(t, make([]byte, 16<<20), rand.New(rand.NewPCG(1, 1)))
					case "operand":
						// Two FILEs, as in `pv img img | head -c 10`.
						args = append(args[:len(args):len(args)], img, img)
						f, err := os.Open(os.DevNull)
						if err != nil {
							t.Fatal(err)
						}
						in = f
					default:
						f, err := os.Open(img)
						if err != nil {
							t.Fatal(err)
						}
						in = f
					}
					outR, outW, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					if read == 0 {
						outR.Close()
					}
					cmd := exec.Command(tool, args...)
					cmd.Stdin, cmd.Stdout = in, outW
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					outW.Close()
					if read > 0 {
						io.ReadFull(outR, make([]byte, read))
						outR.Close()
					}
					code := exitStatus(t, cmd.Wait())
					in.Close()
					msg := stderr.String()
					var ok bool
					switch args[0] {
					case "-q":
						ok = msg == ""
					case "-n":
						ok = regexp.MustCompile(`^-?\d+\n$`).MatchString(msg) // the last line
					case "-f":
						ok = msg != "" && !strings.Contains(msg, filepath.Base(tool)+":") // the last bar, no message
					}
					if code != 0 || !ok {
						t.Errorf("%s: exit %d, stderr %q; want 0 and no message", name, code, msg)
					}
				}
			}
		}
	}
}

// TestSizeFromStdin checks that pvcat finds the size of a regular file or
// a block device on stdin or as FILE operands by itself: pvcat -n then ends
// at 100 (%), and -S stops there.
func TestSizeFromStdin(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	data := randomData(rng, 3<<20)
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, path string) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := runPvcat(t, f, "-n")
		if r.code != 0 || r.stderr != "100\n" || !bytes.Equal(r.stdout, data) {
			t.Fatalf("pvcat -n < %s: exit %d, stderr %q, %d bytes", path, r.code, r.stderr, len(r.stdout))
		}
		// As a FILE operand, twice.
		null, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		if r := runPvcat(t, null, "-n", path, path); r.code != 0 || r.stderr != "100\n" || !bytes.Equal(r.stdout, append(bytes.Clone(data), data...)) {
			t.Fatalf("pvcat -n %s %s: exit %d, stderr %q, %d bytes", path, path, r.code, r.stderr, len(r.stdout))
		}
		// Started 1 MiB in, the size left is 2 MiB.
		f.Seek(1<<20, io.SeekStart)
		r = runPvcat(t, f, "-nb", "-S")
		if r.code != 0 || r.stderr != "2097152\n" || !bytes.Equal(r.stdout, data[1<<20:]) {
			t.Fatalf("pvcat -nb -S < %s at 1 MiB: exit %d, stderr %q, %d bytes", path, r.code, r.stderr, len(r.stdout))
		}
	}
	t.Run("file", func(t *testing.T) { check(t, img) })
	t.Run("block device", func(t *testing.T) { check(t, testutil.LoopDevice(t, img)) })
}
