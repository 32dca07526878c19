package e2e

import (
	"bytes"
	"fmt"
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

// run runs bin with args and stdin, and returns stdout, stderr and the exit
// code.
func run(t *testing.T, stdin []byte, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its stdout, stderr and exit code; it fails
// the test only when cmd could not run at all.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestBadInput(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	tests := []struct {
		name string
		bin  string
		args []string
		code int
		want string // the whole stderr line, or a prefix ending in "…"
	}{
		{"unknown operand", blkcat, []string{"foo=bar"}, 2, "blkcat: unrecognized operand 'foo=bar'"},
		{"bad number", blkcat, []string{"bs=1x"}, 2, "blkcat: invalid number: '1x'"},
		{"bad conversion", blkwrite, []string{"conv=frob"}, 2, "blkwrite: invalid conversion: 'frob'"},
		{"unsupported flag", blkcat, []string{"iflag=directory"}, 2, "blkcat: input flag 'directory' is not supported by blkpipe"},
		{"conflicting flags fail as dd's", blkwrite, []string{"conv=excl,nocreat"}, 1, "blkwrite: cannot combine excl and nocreat"},
		{"unknown option", blkcat, []string{"--frobnicate"}, 2, "blkcat: unknown option '--frobnicate'"},
		{"two paths", blkcat, []string{"/a", "/b"}, 2, "blkcat: unexpected argument '/b': only one input may be given ('/a' was the first)"},
		{"two targets", blkwrite, []string{"/a", "/b"}, 2, "blkwrite: unexpected argument '/b': only one output may be given ('/a' was the first)"},
		{"value on --frame", blkcat, []string{"--frame=0", "/a"}, 2, "blkcat: option '--frame' doesn't allow an argument"},
		{"value on --no-verify", blkwrite, []string{"--no-verify=false", "/a"}, 2, "blkwrite: option '--no-verify' doesn't allow an argument"},
		{"value on --raw", blkwrite, []string{"--raw=no", "/a"}, 2, "blkwrite: option '--raw' doesn't allow an argument"},
		{"empty path", blkwrite, []string{""}, 2, "blkwrite: failed to open '': No such file or directory"},
		{"empty source path", blkcat, []string{""}, 2, "blkcat: failed to open '': No such file or directory"},
		{"bare target and seek too large to truncate", blkwrite, []string{filepath.Join(dir, "t"), "seek=1E"}, 2, "blkwrite: offset too large: cannot truncate to a length of seek=1152921504606846976 (512-byte) blocks"},
		{"path and if=", blkcat, []string{"/a", "if=/b"}, 2, "blkcat: '/a' and if= both name the input; give one"},
		{"missing file", blkcat, []string{filepath.Join(dir, "nope")}, 1, "blkcat: failed to open '" + filepath.Join(dir, "nope") + "': No such file or directory"},
		{"directory source", blkcat, []string{dir}, 1, "blkcat: error reading '" + dir + "': Is a directory"},
		{"unreadable source", blkcat, []string{"if=/proc/self/mem", "count=1"}, 1, "blkcat: error reading '/proc/self/mem': Input/output error"},
		{"missing output dir", blkwrite, []string{"of=" + filepath.Join(dir, "no/such/out")}, 1, "blkwrite: failed to open '" + filepath.Join(dir, "no/such/out") + "': No such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, []byte{}, tt.bin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if first != tt.want {
				t.Errorf("first stderr line %q, want %q", first, tt.want)
			}
			// A usage error is one line; the command line's errors (and
			// dd's "unrecognized operand") are followed by the Try line,
			// as GNU's tools print it; dd's other operand errors are not.
			try := map[string]bool{"unknown operand": true, "unknown option": true, "two paths": true, "two targets": true,
				"value on --frame": true, "value on --no-verify": true, "value on --raw": true, "path and if=": true}[tt.name]
			tool := filepath.Base(tt.bin)
			if want := first + "\nTry '" + tool + " --help' for more information.\n"; tt.code == 2 && try && stderr != want {
				t.Errorf("usage error %q, want %q", stderr, want)
			}
			if tt.code == 2 && !try && strings.Count(stderr, "\n") != 1 {
				t.Errorf("usage error is not one line: %q", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, tool := range []string{"blkcat", "blkwrite"} {
		out, stderr, code := run(t, nil, testutil.Tool(t, tool), "--version")
		if code != 0 || stderr != "" || !strings.HasPrefix(out, tool+" ") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q", tool, code, out, stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, tool := range []string{"blkcat", "blkwrite"} {
		out, _, code := run(t, nil, testutil.Tool(t, tool), "--help")
		if code != 0 {
			t.Errorf("%s --help exit %d", tool, code)
		}
		for _, want := range []string{"Usage: " + tool, "Examples:", "Exit status:\n  0 ", "\n  2    usage:", "\n  130  interrupted"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q", tool, want)
			}
		}
		_, ex, _ := strings.Cut(out, "Examples:\n")
		ex, _, _ = strings.Cut(ex, "\n\n")
		if n := strings.Count(ex, tool); n < 3 {
			t.Errorf("%s --help has %d examples, want 3:\n%s", tool, n, ex)
		}
	}
}

// reportRE matches one dd report: records lines and the bytes line.
var reportRE = regexp.MustCompile(`^[0-9]+\+[0-9]+ records in\n[0-9]+\+[0-9]+ records out\n[0-9]+ (bytes? \([0-9.]+ [kMGTPE]?B(, [0-9.]+ [KMGTPE]iB)?\)|bytes?) copied, [0-9.e+-]+ s, ([0-9.]+ [kMGTPE]?B|Infinity B)/s\n`)

// TestSIGUSR1Storm signals the tool in a tight loop from the moment it
// starts: it must never die of it, every report must be dd's, and the data
// must arrive intact. dd gets the same treatment as the reference.
func TestSIGUSR1Storm(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, bin := range []string{testutil.Tool(t, "blkcat"), testutil.Tool(t, "blkwrite"), "dd"} {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "bs=4096")
			cmd.Stdin = r
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			// From the moment the process can catch SIGUSR1 at all (its
			// SigCgt mask shows a handler: for a Go program that is the
			// runtime's start, before main; for dd, before it opens its
			// files), signal it in a tight loop. Before that instant the
			// kernel's default action would kill any program, dd included.
			waitCaught(t, cmd.Process.Pid, syscall.SIGUSR1)
			stop := make(chan struct{})
			sent := make(chan int)
			go func() {
				n := 0
				for {
					select {
					case <-stop:
						sent <- n
						return
					default:
					}
					if cmd.Process.Signal(syscall.SIGUSR1) == nil {
						n++
					}
					if n%50 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			// Feed slowly while signals fly, then finish.
			for off := 0; off < len(data); off += 64 << 10 {
				time.Sleep(20 * time.Millisecond)
				w.Write(data[off : off+64<<10])
			}
			w.Close()
			err = cmd.Wait()
			close(stop)
			n := <-sent
			if err != nil {
				t.Fatalf("died after %d signals: %v\n%s", n, err, stderr.String())
			}
			if !bytes.Equal(stdout.Bytes(), data) {
				t.Fatalf("output differs from input (%d vs %d bytes)", stdout.Len(), len(data))
			}
			s := stderr.String()
			reports := 0
			for len(s) > 0 {
				loc := reportRE.FindStringIndex(s)
				if loc == nil || loc[0] != 0 {
					t.Fatalf("stderr is not a sequence of dd reports at %q", s[:min(len(s), 200)])
				}
				s = s[loc[1]:]
				reports++
			}
			if reports < 2 {
				t.Errorf("only %d reports after %d signals", reports, n)
			}
			t.Logf("%d signals, %d reports", n, reports)
		})
	}
}

// waitCaught waits until process pid has a handler for sig.
func waitCaught(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err == nil && mask&(1<<(uint(sig)-1)) != 0 {
					return
				}
			}
		}
	}
	t.Fatalf("process %d never caught %v", pid, sig)
}

// TestDeviceDirectOddSize reads and writes loop devices whose size is not
// a multiple of the block size, through O_DIRECT, and compares with dd.
func TestDeviceDirectOddSize(t *testing.T) {
	testutil.NeedRoot(t)
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	size := 3<<20 + 512*7 // sectors, but not a multiple of 4096 or 1 MiB
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	src := testutil.SparseFile(t, int64(size))
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dev := testutil.LoopDevice(t, src)

	for _, bs := range []string{"bs=4096", "bs=1M", "ibs=4096"} {
		got, gotErr, code := run(t, nil, blkcat, "if="+dev, bs)
		want, wantErr, _ := run(t, nil, "dd", "if="+dev, bs)
		if code != 0 || got != want || mask(gotErr, "blkcat") != mask(wantErr, "dd") {
			t.Errorf("blkcat %s: exit %d, output equal %v\nstderr %q\ndd     %q", bs, code, got == want, gotErr, wantErr)
		}
		if got != string(data) {
			t.Errorf("blkcat %s: device content differs", bs)
		}
	}

	// Write the device from a pipe with blkwrite, O_DIRECT with an odd tail.
	dstImg := testutil.SparseFile(t, int64(size))
	dst := testutil.LoopDevice(t, dstImg)
	_, stderr, code := run(t, data, blkwrite, "of="+dst, "bs=64K")
	if code != 0 {
		t.Fatalf("blkwrite exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("device written by blkwrite differs from its input")
	}
	want := "48+1 records in\n48+1 records out\n"
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want prefix %q", stderr, want)
	}
}

// TestWriteGuard: a mounted target is refused before any write, and a
// target smaller than the input is refused (sized input) or stopped with the
// bytes that landed (pipe).
func TestWriteGuard(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "mount", "umount")
	blkwrite := testutil.Tool(t, "blkwrite")
	marker := bytes.Repeat([]byte{0xAB}, 4<<20)

	t.Run("mounted", func(t *testing.T) {
		dev, _ := testutil.LoopImage(t, 32<<20)
		testutil.Run(t, "mkfs.ext4", "-q", "-F", dev)
		mnt := t.TempDir()
		testutil.Run(t, "mount", dev, mnt)
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		_, stderr, code := run(t, marker, blkwrite, dev)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		want := "blkwrite: " + dev + " is mounted or in use by another program (opened with O_EXCL)"
		if !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("stderr %q, want one line starting %q", stderr, want)
		}
		testutil.Run(t, "umount", mnt)
		got, err := os.ReadFile(dev)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got[:8<<20], marker[:4096]) {
			t.Errorf("the mounted device was written to")
		}
	})

	t.Run("smaller-sized-input", func(t *testing.T) {
		dev, _ := testutil.LoopImage(t, 1<<20)
		in := filepath.Join(t.TempDir(), "in")
		os.WriteFile(in, marker, 0o644)
		_, stderr, code := run(t, nil, blkwrite, "if="+in, "of="+dev)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		want := "blkwrite: target is smaller than the input: '" + dev + "' holds 1048576 bytes, the input needs 4194304 bytes from offset 0; nothing was written\n"
		if stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
		got, _ := os.ReadFile(dev)
		if !bytes.Equal(got, make([]byte, 1<<20)) {
			t.Errorf("the device was written to")
		}
	})

	t.Run("smaller-pipe", func(t *testing.T) {
		dev, _ := testutil.LoopImage(t, 1<<20)
		_, stderr, code := run(t, marker, blkwrite, dev)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, want := range []string{
			// dd's wording for a full obs block (no bs=): "writing to".
			"blkwrite: writing to '" + dev + "': No space left on device\n",
			"blkwrite: target is smaller than the input: 1048576 bytes landed on '" + dev + "', the rest did not fit\n",
			"2048+0 records out\n1048576 bytes (1.0 MB, 1.0 MiB) copied",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		got, _ := os.ReadFile(dev)
		if !bytes.Equal(got, marker[:1<<20]) {
			t.Errorf("the device does not hold the first 1 MiB of the input")
		}
	})
}

// TestHelpListsOptions: every option the tools accept is in their --help,
// and every option listed there is accepted (OPTION [VALUE] --help exits 0,
// as the parser reaches --help only past an option it knows).
func TestHelpListsOptions(t *testing.T) {
	for _, tc := range []struct {
		tool string
		opts [][]string // the option, and a value when it takes one
	}{
		{"blkcat", [][]string{{"--bs", "4K"}, {"--offset", "1"}, {"--length", "1"}, {"-q"}, {"--quiet"},
			{"--frame"}, {"-z", "lz4"}, {"-z", "none"}, {"--compress", "lz4"}, {"--sums"}, {"--against", "x"},
			{"--resume", "x"}, {"--allow-read", "/dev/null"}, {"-h"}, {"--help"}, {"-V"}, {"--version"}}},
		{"blkwrite", [][]string{{"--bs", "4K"}, {"--offset", "1"}, {"--length", "1"}, {"-q"}, {"--quiet"},
			{"--raw"}, {"--framed"}, {"--assume-zeroed"}, {"--no-verify"}, {"--resume-point"},
			{"--allow-raw"}, {"--idle-timeout", "1m"}, {"-h"}, {"--help"}, {"-V"}, {"--version"}}},
	} {
		bin := testutil.Tool(t, tc.tool)
		help, _, _ := run(t, nil, bin, "--help")
		if tc.tool == "blkcat" && !strings.Contains(help, "; none is --frame alone") {
			t.Errorf("blkcat --help does not say -z takes none")
		}
		for _, o := range tc.opts {
			if !regexp.MustCompile(`(?m)^  (-[a-zA-Z], )?` + regexp.QuoteMeta(o[0]) + `\b`).MatchString(help) {
				t.Errorf("%s --help does not list %s", tc.tool, o[0])
			}
			if _, stderr, code := run(t, nil, bin, append(o, "--help")...); code != 0 {
				t.Errorf("%s %q --help: exit %d, stderr %q", tc.tool, o, code, stderr)
			}
		}
	}
}
