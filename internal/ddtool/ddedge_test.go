package ddtool_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
	"golang.org/x/sys/unix"
)

// edgeCase is a differential case (see TestDifferentialDD) at the edges dd
// users reach: offsets beyond an off_t, skips past the end, O_APPEND,
// failed writes, block sizes no memory holds.
type edgeCase struct {
	diffCase
	noBlkwrite bool // blkwrite differs on purpose (it guards or refuses)
}

var edgeCases = []edgeCase{
	// count= times ibs beyond an off_t is no limit.
	{diffCase: diffCase{name: "count-1E", ops: "if=IN count=1E"}},
	{diffCase: diffCase{name: "count-1E-pipe", ops: "count=1E", in: inPipe}},
	{diffCase: diffCase{name: "count-huge-bs-pipe", ops: "bs=1G count=9999999999", in: inPipe, size: 4096}},
	{diffCase: diffCase{name: "count-1E-bytes", ops: "if=IN count=1E iflag=count_bytes"}},

	// skip=: an offset beyond an off_t, or one lseek refuses, fails on
	// anything that can seek; past the end of a file, or of a pipe, dd
	// warns and copies nothing.
	{diffCase: diffCase{name: "skip-1E", ops: "if=IN skip=1E", wantErr: true}},
	{diffCase: diffCase{name: "skip-1E-stdin-file", ops: "skip=1E", in: inStdin, wantErr: true}},
	{diffCase: diffCase{name: "skip-1E-pipe", ops: "skip=1E", in: inPipe}},
	{diffCase: diffCase{name: "skip-1E-pipe-bs", ops: "skip=1E bs=64K", in: inPipe}},
	{diffCase: diffCase{name: "skip-past-end", ops: "if=IN skip=5000"}},
	{diffCase: diffCase{name: "skip-past-end-quiet", ops: "if=IN skip=5000 status=none"}},
	{diffCase: diffCase{name: "skip-past-end-bytes", ops: "if=IN skip=2000000B count=1"}},
	{diffCase: diffCase{name: "skip-to-end", ops: "if=IN skip=1049810B"}},
	{diffCase: diffCase{name: "skip-device-past-end", ops: "if=DEV skip=40000", in: inDevice, size: 1 << 20, wantErr: true}},
	{diffCase: diffCase{name: "skip-device-to-end", ops: "if=DEV skip=2048", in: inDevice, size: 1 << 20}},
	{diffCase: diffCase{name: "skip-char-device-1E", ops: "if=/dev/zero skip=1E count=1", wantErr: true}},
	{diffCase: diffCase{name: "skip-char-device", ops: "if=/dev/zero skip=5 count=3"}},
	// blkwrite's look for a framed stream's header read 64 KiB: a short
	// first record of a larger ibs, or of one that does not divide it
	// ("2+1 records in" for bs=1M count=3), and skip= read and
	// discarded what dd seeks over on /dev/zero.
	{diffCase: diffCase{name: "char-device-bs-1M", ops: "if=/dev/zero bs=1M count=3"}},
	{diffCase: diffCase{name: "char-device-bs-1000", ops: "if=/dev/zero bs=1000 count=100"}},
	{diffCase: diffCase{name: "urandom-bs-1M", ops: "if=/dev/urandom bs=1M count=3 of=/dev/null"}},
	{diffCase: diffCase{name: "char-device-skip-bs-1M", ops: "if=/dev/zero bs=1M skip=3 count=1"}},
	{diffCase: diffCase{name: "pipe-bs-1M-count", ops: "bs=1M count=1", in: inPipe, size: 30000}},

	// seek=: the same on the output; blkwrite leaves a device it cannot
	// seek in to dd's error rather than its own size check.
	{diffCase: diffCase{name: "seek-1E-device", ops: "if=IN of=OUT conv=notrunc seek=1E", size: 4096, outDev: 1 << 20, wantErr: true}},
	{diffCase: diffCase{name: "seek-past-device-end", ops: "if=IN of=OUT seek=5000", size: 4096, outDev: 1 << 20, wantErr: true}},
	{diffCase: diffCase{name: "seek-1E-file-notrunc", ops: "if=IN of=OUT conv=notrunc seek=1E", outPre: 5000, wantErr: true}},
	{diffCase: diffCase{name: "seek-1E-pipe", ops: "if=IN seek=1E", wantErr: true}},
	{diffCase: diffCase{name: "seek-pipe", ops: "if=IN seek=1", wantErr: true}},

	// O_APPEND: conv=sparse keeps dd's bytes (trailing zeros included),
	// blkwrite appends from a pipe, and dd's warning without notrunc.
	{diffCase: diffCase{name: "append-sparse", ops: "of=OUT oflag=append conv=notrunc,sparse bs=64K", in: inStdin, zeros: true, outPre: 3000000}},
	{diffCase: diffCase{name: "append-sparse-truncating", ops: "if=IN of=OUT oflag=append conv=sparse bs=64K", zeros: true, outPre: 300000}},
	{diffCase: diffCase{name: "append-sparse-reblock", ops: "if=IN of=OUT oflag=append conv=notrunc,sparse obs=4096", zeros: true, outPre: 1000}},
	{diffCase: diffCase{name: "append-pipe", ops: "of=OUT oflag=append conv=notrunc", in: inPipe, outPre: 3000}},
	{diffCase: diffCase{name: "append-warning", ops: "if=IN of=OUT oflag=append", outPre: 100}},

	// A failed write, worded by the write dd would have failed on
	// (blkwrite adds that the target is smaller than the input).
	{diffCase: diffCase{name: "write-error-full-block", ops: "if=IN of=/dev/full", size: 513, wantErr: true}, noBlkwrite: true},
	{diffCase: diffCase{name: "write-error-short-block", ops: "if=IN of=/dev/full obs=1000", size: 513, wantErr: true}, noBlkwrite: true},
	{diffCase: diffCase{name: "write-error-bs", ops: "if=IN of=/dev/full bs=1000", size: 513, wantErr: true}, noBlkwrite: true},
	{diffCase: diffCase{name: "write-error-ibs", ops: "if=IN of=/dev/full ibs=1000", size: 513, wantErr: true}, noBlkwrite: true},
	{diffCase: diffCase{name: "write-error-pipe-short-block", ops: "of=/dev/full obs=1000", in: inPipe, size: 513, wantErr: true}, noBlkwrite: true},
	{diffCase: diffCase{name: "write-error-large", ops: "if=IN of=/dev/full obs=3000", wantErr: true}, noBlkwrite: true},

	// Buffers dd cannot allocate; sizes whose common multiples are huge.
	{diffCase: diffCase{name: "bs-1E", ops: "if=IN bs=1E", wantErr: true}},
	{diffCase: diffCase{name: "obs-1E", ops: "if=IN obs=1E", wantErr: true}},
	{diffCase: diffCase{name: "bs-1E-count-0", ops: "if=IN bs=1E count=0"}},
	{diffCase: diffCase{name: "ibs-obs-coprime", ops: "if=IN ibs=999999 obs=1000000"}},
	{diffCase: diffCase{name: "ibs-obs-coprime-sparse", ops: "if=IN of=OUT ibs=999999 obs=1000000 conv=sparse", zeros: true}},
	// Read in sequence with dd's sizes, which O_DIRECT refuses: blkcat
	// copied nothing and exited 0 once the input was a few records long.
	{diffCase: diffCase{name: "ibs-obs-coprime-sparse-4M", ops: "if=IN of=OUT ibs=999999 obs=1000000 conv=sparse", zeros: true, size: 4000000}},
	// (blkwrite, whose O_DIRECT output chunks it differently, reads it in
	// aligned chunks and copies it all.)
	{diffCase: diffCase{name: "ibs-obs-coprime-sparse-direct", ops: "if=IN of=OUT iflag=direct ibs=999999 obs=1000000 conv=sparse", size: 4000000, wantErr: true}, noBlkwrite: true},
}

// TestEdgesAgainstDD runs edgeCases with dd and the tools: the same output
// bytes, the same stderr (time and rate aside) and the same exit code.
func TestEdgesAgainstDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := ddTools(t)
	for _, tc := range edgeCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == inDevice || tc.outDev > 0 {
				testutil.NeedRoot(t)
			}
			want := runCase(t, tc.diffCase, "dd", "dd")
			if (want.code != 0) != tc.wantErr {
				t.Fatalf("dd exit %d, case expects error=%v; stderr:\n%s", want.code, tc.wantErr, want.stderr)
			}
			for _, prog := range ddProgs {
				if prog == "blkwrite" && tc.noBlkwrite {
					continue
				}
				got := runCase(t, tc.diffCase, prog, tools[prog])
				compareToDD(t, prog, got, want, func(s, p string) string { return maskLoop(mask(s, p)) })
			}
		})
	}
}

// TestSkipSeekBeyondFilesystem: an offset the filesystem refuses (ext4
// stops at 16 TiB; tmpfs does not) fails or warns as dd does there.
func TestSkipSeekBeyondFilesystem(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	blkcat := testutil.Tool(t, "blkcat")
	for _, tc := range []diffCase{
		{name: "skip-1T", ops: "if=IN skip=1T"},
		{name: "seek-1T-notrunc", ops: "if=IN of=OUT conv=notrunc seek=1T", outPre: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := runCase(t, tc, "dd", "dd")
			got := runCase(t, tc, "blkcat", blkcat)
			if got.code != want.code || !bytes.Equal(got.out, want.out) || mask(got.stderr, "blkcat") != mask(want.stderr, "dd") {
				t.Errorf("blkcat exit %d, %d bytes, stderr:\n%s\ndd exit %d, %d bytes, stderr:\n%s",
					got.code, len(got.out), got.stderr, want.code, len(want.out), want.stderr)
			}
		})
	}
}

// TestHugeBlockSizeLeavesTarget: a bs= no memory holds is refused with
// dd's message before the output is opened (dd truncates it first).
func TestHugeBlockSizeLeavesTarget(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeFile(t, in, bytes.Repeat([]byte("data"), 1000))
	for _, tool := range []string{"blkcat", "blkwrite"} {
		for _, bs := range []string{"1E", "9223372036854775806"} {
			target := filepath.Join(dir, "target")
			writeFile(t, target, []byte("keep me"))
			_, stderr, code := run(t, nil, testutil.Tool(t, tool), "if="+in, "of="+target, "bs="+bs)
			var want string
			if bs == "1E" {
				want = tool + ": memory exhausted by input buffer of size 1152921504606846976 bytes (1.0 EiB)\n"
			} else {
				want = tool + ": memory exhausted by input buffer of size 9223372036854775806 bytes (8.0 EiB)\n"
			}
			if code != 1 || stderr != want {
				t.Errorf("%s bs=%s: exit %d, stderr %q; want 1, %q", tool, bs, code, stderr, want)
			}
			if got := mustRead(t, target); string(got) != "keep me" {
				t.Errorf("%s bs=%s: the target was touched: %q", tool, bs, got)
			}
			if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
				t.Fatal("unexpected file")
			}
			_, _, code = run(t, nil, testutil.Tool(t, tool), "if="+in, "of="+filepath.Join(dir, "new"), "bs="+bs)
			if _, err := os.Stat(filepath.Join(dir, "new")); code != 1 || err == nil {
				t.Errorf("%s bs=%s: exit %d, output created: %v", tool, bs, code, err == nil)
			}
		}
	}
}

// TestWarningsBeforeUsageError: the warnings dd prints before refusing an
// operand come first, as dd's do (then blkpipe's exit code 2).
func TestWarningsBeforeUsageError(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bs=0x5"}, "blkcat: warning: '0x' is a zero multiplier; use '00x' if that is intended\nblkcat: invalid number: '0x5'\n"},
		{[]string{"oflag=append", "bs=0x5x1"}, "blkcat: invalid number: '0x5x1'\n"},
		{[]string{"oflag=append", "of="}, "blkcat: you probably want conv=notrunc with oflag=append\nblkcat: failed to open '': No such file or directory\n"},
	} {
		_, stderr, code := run(t, []byte{}, blkcat, tc.args...)
		if code != 2 || stderr != tc.want {
			t.Errorf("%q: exit %d, stderr %q; want 2, %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestSIGPIPEIgnored: started with SIGPIPE ignored (trap "" PIPE, systemd's
// IgnoreSIGPIPE=yes), a closed standard output is a write error that dd
// reports, with its statistics, and exit 1; with SIGPIPE's default both
// die of it (141) without a word.
func TestSIGPIPEIgnored(t *testing.T) {
	testutil.NeedCmd(t, "dd", "bash", "head")
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeFile(t, in, bytes.Repeat([]byte("0123456789abcdef"), 4<<20)) // 64 MiB
	for _, trap := range []string{`trap "" PIPE`, `trap - PIPE`} {
		for _, ops := range []string{"", "bs=1M", "obs=1M"} {
			t.Run(trap+" "+ops, func(t *testing.T) {
				var firsts [2]string
				var codes [2]string
				for i, bin := range []string{"dd", testutil.Tool(t, "blkcat")} {
					errFile := filepath.Join(dir, fmt.Sprintf("err%d", i))
					script := fmt.Sprintf(`%s; %s if=%s %s 2>%s | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"`, trap, bin, in, ops, errFile)
					out, _, _ := runCmdScript(t, script)
					codes[i] = strings.TrimSpace(out)
					stderr := string(mustRead(t, errFile))
					first, rest, _ := strings.Cut(stderr, "\n")
					firsts[i] = strings.TrimPrefix(strings.TrimPrefix(first, "dd: "), "blkcat: ")
					if codes[i] == "1" && !reportRE.MatchString(rest) {
						t.Errorf("%s: no dd report after %q:\n%s", filepath.Base(bin), first, stderr)
					}
				}
				if codes[0] != codes[1] || firsts[0] != firsts[1] {
					t.Errorf("blkcat exit %s, %q; dd exit %s, %q", codes[1], firsts[1], codes[0], firsts[0])
				}
				wantCode := map[string]string{`trap "" PIPE`: "1", `trap - PIPE`: "141"}[trap]
				if codes[1] != wantCode {
					t.Errorf("blkcat exit %s, want %s", codes[1], wantCode)
				}
			})
		}
	}
}

var loopRE = regexp.MustCompile(`/dev/loop[0-9]+`)

// maskLoop hides loop device numbers: each run gets a device of its own.
func maskLoop(s string) string { return loopRE.ReplaceAllString(s, "/dev/loopN") }

func runCmdScript(t *testing.T, script string) (string, string, int) {
	t.Helper()
	return sh(t, nil, script)
}

// TestPartialReadWarningQuiet: dd warns about a short read followed by
// another read ("partial read ...; suggest iflag=fullblock"), but not with
// status=none; the same input through blkcat gives the same stderr.
func TestPartialReadWarningQuiet(t *testing.T) {
	testutil.NeedCmd(t, "bash", "dd")
	for _, status := range []string{"", "status=none"} {
		feed := "(printf abc; sleep 0.3; printf def) | "
		count := "2>&1 >/dev/null | grep -c 'partial read' || true"
		dd, _, _ := sh(t, []string{"LC_ALL=C"}, feed+"dd bs=4 count=2 "+status+" "+count)
		ours, _, _ := sh(t, nil, feed+"$BC bs=4 count=2 "+status+" "+count)
		if dd != ours || (status == "" && dd != "1\n") {
			t.Errorf("%q: dd printed the warning %q times, blkcat %q", status, dd, ours)
		}
	}
}

// TestSIGINTLikeDD: SIGINT to a script's process group (Ctrl-C) while dd
// waits for input makes dd print its statistics and die of the signal, so
// bash stops the script too. The tools printed "interrupted" and exited
// 130, and bash went on with the script's next command.
func TestSIGINTLikeDD(t *testing.T) {
	testutil.NeedCmd(t, "dd", "bash")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	type outcome struct{ stdout, stderr, status string }
	results := map[string]outcome{}
	for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
		cmd := exec.Command("bash", "-c", `"$P" bs=1000 >/dev/null; echo next`)
		cmd.Env = append(os.Environ(), "P="+tools[prog], "LC_ALL=C")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		if _, err := stdin.Write(bytes.Repeat([]byte("x"), 5000)); err != nil {
			t.Fatal(err)
		}
		child := waitChild(t, cmd.Process.Pid)
		waitReadStdin(t, child)
		time.Sleep(100 * time.Millisecond) // the 5000 bytes read are written
		waitReadStdin(t, child)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		code := exitCode(t, cmd)
		stdin.Close()
		results[prog] = outcome{stdout.String(), mask(stderr.String(), prog), strconv.Itoa(code)}
	}
	want := results["dd"]
	if want.stdout != "" || want.status != "130" {
		t.Fatalf("dd's script went on (%q) or ended %s", want.stdout, want.status)
	}
	for _, prog := range []string{"blkcat", "blkwrite"} {
		if got := results[prog]; got != want {
			t.Errorf("%s: script printed %q, ended %s, stderr:\n%s\ndd: %q, %s, stderr:\n%s",
				prog, got.stdout, got.status, got.stderr, want.stdout, want.status, want.stderr)
		}
	}
}

// waitChild returns the pid of process pid's first child.
func waitChild(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d started no child", pid)
	return 0
}

// TestWaitForFirstByteLikeDD: while the input has not sent a byte, dd's
// clock runs and SIGUSR1 reports "0+0 records in"; the final report's
// time counts the wait. blkwrite (which looks at the first bytes for a
// framed stream's header) printed nothing on SIGUSR1 until data came and
// started its clock then ("3 bytes copied, 0.0008 s" after a 1.5 s wait).
func TestWaitForFirstByteLikeDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	const wait = 400 * time.Millisecond
	secondsRE := regexp.MustCompile(`copied, ([0-9.]+) s,`)
	for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
		t.Run(prog, func(t *testing.T) {
			cmd := exec.Command(tools[prog])
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			cmd.Stdout = io.Discard
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			started := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitReadStdin(t, cmd.Process.Pid)
			cmd.Process.Signal(syscall.SIGUSR1)
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var report []string
			for len(report) < 3 {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("stderr ended after %q", report)
					}
					report = append(report, l)
				case <-time.After(10 * time.Second):
					t.Fatalf("no report on SIGUSR1 before the first byte; got %q", report)
				}
			}
			if report[0] != "0+0 records in" || report[1] != "0+0 records out" || !strings.HasPrefix(report[2], "0 bytes copied, ") {
				t.Errorf("SIGUSR1 report %q", report)
			}
			time.Sleep(wait - time.Since(started))
			io.WriteString(stdin, "abc")
			stdin.Close()
			var final []string
			for l := range lines {
				final = append(final, l)
			}
			if code := exitCode(t, cmd); code != 0 || len(final) != 3 || final[0] != "0+1 records in" {
				t.Fatalf("exit %d, final report %q", code, final)
			}
			m := secondsRE.FindStringSubmatch(final[2])
			if m == nil {
				t.Fatalf("no time in %q", final[2])
			}
			if s, _ := strconv.ParseFloat(m[1], 64); s < (wait - 100*time.Millisecond).Seconds() {
				t.Errorf("%q: the %v waited for the first byte is not counted", final[2], wait)
			}
		})
	}
}

// TestStdioFlagsLikeDD: iflag=/oflag= on standard input or output, which
// dd does not open, are set with fcntl: oflag=append on "1<>file" appends
// (the tools wrote over the file's start), and iflag=nonblock on an empty
// pipe fails with EAGAIN (the tools waited for data).
func TestStdioFlagsLikeDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	for _, tc := range []struct {
		name string
		args []string
		pipe bool // standard input is an empty pipe whose writer stays open
	}{
		{name: "append", args: []string{"oflag=append", "conv=notrunc"}},
		{name: "append-warning", args: []string{"oflag=append", "bs=100"}},
		{name: "nonblock", args: []string{"iflag=nonblock"}, pipe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in")
			writeFile(t, in, bytes.Repeat([]byte("input "), 200))
			results := map[string]result{}
			for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
				out := filepath.Join(dir, "out")
				writeFile(t, out, bytes.Repeat([]byte("old "), 500))
				stdout, err := os.OpenFile(out, os.O_RDWR, 0) // 1<>out
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(tools[prog], tc.args...)
				cmd.Env = append(os.Environ(), "LC_ALL=C")
				var stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = stdout, &stderr
				if tc.pipe {
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					defer w.Close()
					cmd.Stdin = r
				} else {
					f, err := os.Open(in)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					cmd.Stdin = f
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				code := exitCode(t, cmd)
				stdout.Close()
				results[prog] = result{out: mustRead(t, out), stderr: stderr.String(), code: code}
			}
			want := results["dd"]
			for _, prog := range []string{"blkcat", "blkwrite"} {
				compareToDD(t, prog, results[prog], want, mask)
			}
		})
	}
}

// TestFullblockPassesRecordsOn: with iflag=fullblock, dd writes each
// record as soon as it has read it whole, while the input pauses in the
// middle of the next one. The tools held the records they had until their
// buffer filled or the input ended, so a live stream stalled.
func TestFullblockPassesRecordsOn(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	first := bytes.Repeat([]byte("0123456789"), 10000) // then a pause, then "rest"
	for _, tc := range []struct {
		ops   string
		early int // bytes dd writes before the pause ends
	}{
		{"bs=100000 iflag=fullblock", 100000},
		{"bs=33333 iflag=fullblock", 99999},
		{"bs=33333 iflag=fullblock conv=sync", 99999},
		{"ibs=33333 obs=7777 iflag=fullblock", 99999 / 7777 * 7777},
	} {
		t.Run(tc.ops, func(t *testing.T) {
			var want result
			for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
				cmd := exec.Command(tools[prog], strings.Fields(tc.ops)...)
				cmd.Env = append(os.Environ(), "LC_ALL=C")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
				if _, err := stdin.Write(first); err != nil {
					t.Fatal(err)
				}
				early := make([]byte, tc.early)
				got := make(chan error, 1)
				go func() { _, err := io.ReadFull(stdout, early); got <- err }()
				select {
				case err := <-got:
					if err != nil {
						t.Fatalf("%s: %v", prog, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s wrote fewer than the %d bytes of the records it had read whole while the input paused", prog, tc.early)
				}
				io.WriteString(stdin, "rest")
				stdin.Close()
				rest, _ := io.ReadAll(stdout)
				res := result{out: append(early, rest...), code: exitCode(t, cmd), stderr: stderr.String()}
				if prog == "dd" {
					want = res
					continue
				}
				compareToDD(t, prog, res, want, mask)
			}
		})
	}
}

// TestProgressAtEndOfInput: dd draws its status=progress line before each
// read, so an input that ends more than a second after its last data ends
// the copy without a progress line. The tools drew one on the end itself.
func TestProgressAtEndOfInput(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	var want result
	for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
		cmd := exec.Command(tools[prog], "status=progress")
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		stdin.Write(bytes.Repeat([]byte("x"), 1000))
		time.Sleep(1200 * time.Millisecond) // past the first second
		stdin.Close()
		code := exitCode(t, cmd)
		res := result{out: stdout.Bytes(), code: code, stderr: stderr.String()}
		if prog == "dd" {
			want = res
			continue
		}
		compareToDD(t, prog, res, want, mask)
	}
}

// TestNonblockFIFOLikeDD: if=FIFO iflag=nonblock with a writer that has
// written nothing fails at once with EAGAIN in dd (a script drains a FIFO
// this way); the tools waited for data or for the writer to go.
func TestNonblockFIFOLikeDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := map[string]string{"dd": "dd", "blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writer, err := os.OpenFile(fifo, os.O_RDWR, 0) // a writer that stays silent
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	var want result
	for _, prog := range []string{"dd", "blkcat", "blkwrite"} {
		cmd := exec.Command(tools[prog], "if="+fifo, "iflag=nonblock")
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		code := exitCode(t, cmd)
		res := result{out: stdout.Bytes(), code: code, stderr: stderr.String()}
		if prog == "dd" {
			want = res
			continue
		}
		compareToDD(t, prog, res, want, mask)
	}
}
