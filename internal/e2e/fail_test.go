package e2e

import (
	"bytes"
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
)

// This file holds the tests of what blkcat and blkwrite do when things go
// wrong half way: signals, a full file system, concurrent writers, a
// target that changed between an interrupted copy and its resume.

// waitReadStdin waits until a thread of process pid is blocked in read(2)
// on its standard input, so a signal sent then finds it there.
func waitReadStdin(t *testing.T, pid int) {
	t.Helper()
	testutil.WaitReadStdin(t, pid)
}

// waitSyscall waits until a thread of process pid is in the system call
// that /proc/PID/task/TID/syscall shows starting with prefix: its number
// (x86-64's) and first argument.
func waitSyscall(t *testing.T, pid int, prefix string) {
	t.Helper()
	testutil.WaitSyscall(t, pid, prefix)
}

// waitChanged waits until the file at path no longer holds was.
func waitChanged(t *testing.T, path string, was []byte) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, was) {
			return
		}
	}
	t.Fatalf("%s still holds what it held 30 s after the stream started", path)
}

// waitOpen waits until process pid has path open.
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fds, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/fd/*")
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && l == path {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never opened %s", pid, path)
}

// startWriter starts blkwrite with args and a standard input the test
// writes to; it is killed at cleanup.
func startWriter(t *testing.T, env []string, args ...string) (*exec.Cmd, io.WriteCloser, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, "blkwrite"), args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdin, &stderr
}

// exitCode waits for cmd, at most 10 s, and returns its exit status
// (128+N when a signal N killed it).
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not stop within 10 s", filepath.Base(cmd.Path))
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// TestSignalBeforeFirstByte: blkwrite waiting for its first bytes, or for
// the rest of a framed stream's header, from a sender that stalls stops
// at once on SIGTERM (exit 130) or SIGINT (killed by it, as dd is) and
// leaves the target as it was; it used to wait for the input to end and
// then exit 1.
func TestSignalBeforeFirstByte(t *testing.T) {
	dir := t.TempDir()
	data := sample(1<<20, 3)
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	stream, _, code := run(t, nil, testutil.Tool(t, "blkcat"), "-q", "--frame", src)
	if code != 0 {
		t.Fatal("blkcat --frame failed")
	}
	old := sample(64<<10, 4)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		pre  []byte // what the sender wrote before it stalled
		args []string
	}{
		{"nothing/TERM", syscall.SIGTERM, nil, nil},
		{"nothing/INT", syscall.SIGINT, nil, []string{"--framed"}},
		{"magic/TERM", syscall.SIGTERM, []byte(stream[:8]), nil},
		{"half header/INT", syscall.SIGINT, []byte(stream[:40]), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			writeFile(t, dst, old)
			cmd, stdin, stderr := startWriter(t, nil, append(tc.args, dst)...)
			defer stdin.Close()
			if _, err := stdin.Write(tc.pre); err != nil {
				t.Fatal(err)
			}
			waitReadStdin(t, cmd.Process.Pid)
			cmd.Process.Signal(tc.sig)
			if code := exitCode(t, cmd); code != 130 {
				t.Errorf("exit %d, want 130; stderr:\n%s", code, stderr)
			}
			// On SIGINT, as dd, blkwrite dies of the signal after its
			// statistics, without a word more.
			if interrupted := strings.HasSuffix(stderr.String(), "blkwrite: interrupted\n"); interrupted != (tc.sig == syscall.SIGTERM) {
				t.Errorf("stderr ends with \"blkwrite: interrupted\": %v, want %v:\n%s", interrupted, tc.sig == syscall.SIGTERM, stderr)
			}
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() != (tc.sig == syscall.SIGINT) {
				t.Errorf("killed by a signal: %v, want %v", ws.Signaled(), tc.sig == syscall.SIGINT)
			}
			if !bytes.Equal(mustRead(t, dst), old) {
				t.Error("the target changed")
			}
		})
	}
}

// TestSignalMidCopy: SIGTERM to blkwrite half way through a full framed
// copy or a delta says, as every other failure that changed the target
// does, that the copy is incomplete and the target not to be used; it used
// to print only the resume point (or, for a delta, nothing at all).
func TestSignalMidCopy(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	data := sample(4<<20, 5)
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	full, _, code := run(t, nil, blkcat, "-q", "--frame", src)
	if code != 0 {
		t.Fatal("blkcat --frame failed")
	}
	old := filepath.Join(dir, "old")
	writeFile(t, old, sample(4<<20, 6))
	sums, _, code := run(t, nil, blkcat, "-q", "--sums", old)
	if code != 0 {
		t.Fatal("blkcat --sums failed")
	}
	delta, _, code := run(t, []byte(sums), blkcat, "-q", "--against", "-", src)
	if code != 0 {
		t.Fatal("blkcat --against failed")
	}
	for _, tc := range []struct {
		name   string
		stream string
		resume bool
	}{
		{"full", full, true},
		{"delta", delta, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			writeFile(t, dst, mustRead(t, old))
			cmd, stdin, stderr := startWriter(t, nil, "-q", dst)
			defer stdin.Close()
			if _, err := io.WriteString(stdin, tc.stream[:len(tc.stream)/2]); err != nil {
				t.Fatal(err)
			}
			// Signalled once a record has landed (the target no longer
			// holds what it held) and blkwrite waits for more
			// input; signalled before its first write, the target is
			// untouched and there is nothing incomplete to report.
			waitChanged(t, dst, mustRead(t, old))
			waitReadStdin(t, cmd.Process.Pid)
			cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(t, cmd); code != 130 {
				t.Errorf("exit %d, want 130; stderr:\n%s", code, stderr)
			}
			got := stderr.String()
			if !regexp.MustCompile(`(?m)^blkwrite: the copy is incomplete: [0-9]+ bytes landed on '` + regexp.QuoteMeta(dst) + `'; do not use the target$`).MatchString(got) {
				t.Errorf("no \"the copy is incomplete\" line:\n%s", got)
			}
			if saved := strings.Contains(got, "blkwrite: resume point saved at byte "); saved != tc.resume {
				t.Errorf("resume point saved: %v, want %v:\n%s", saved, tc.resume, got)
			}
			if !strings.HasSuffix(got, "blkwrite: interrupted\n") {
				t.Errorf("stderr does not end with \"blkwrite: interrupted\":\n%s", got)
			}
		})
	}
}

// TestResumeTargetChanged: a target replaced, shortened or rewritten
// between the interrupted copy and its resume is refused before anything
// is written to it; blkwrite used to write the rest of the stream and
// find out at the end (a digest mismatch, or "read base ... unexpected
// EOF" followed by "resume point saved").
func TestResumeTargetChanged(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := sample(6<<20, 7)
	writeFile(t, src, data)
	for _, tc := range []struct {
		name   string
		change func(dst string)
		want   string // after "blkwrite: resume stream refused: 'DST' "
	}{
		{"replaced by an empty file", func(dst string) {
			os.Remove(dst)
			writeFile(t, dst, nil)
		}, "no longer holds the "},
		{"shortened", func(dst string) { os.Truncate(dst, 1<<20) }, "no longer holds the "},
		{"first block rewritten", func(dst string) {
			f, err := os.OpenFile(dst, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(make([]byte, 4096), 0)
			f.Close()
		}, "changed since the interrupted copy (sampled blocks of its first "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			_, stderr, code := sh(t, nil, "$BC -q --frame "+src+" | head -c 3000000 | $BW -q "+dst)
			if code != 1 || !strings.Contains(stderr, "blkwrite: resume point saved at byte ") {
				t.Fatalf("cut copy: exit %d: %s", code, stderr)
			}
			tok, _, code := run(t, nil, testutil.Tool(t, "blkwrite"), "--resume-point", dst)
			if code != 0 {
				t.Fatal("no resume point")
			}
			tc.change(dst)
			before := mustRead(t, dst)
			_, stderr, code = sh(t, nil, "$BC -q --resume "+strings.TrimSpace(tok)+" "+src+" | $BW -q "+dst)
			var lines []string // blkwrite's (blkcat says where it resumes)
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(l, "blkwrite: ") {
					lines = append(lines, l)
				}
			}
			prefix := "blkwrite: resume stream refused: '" + dst + "' " + tc.want
			if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.HasSuffix(lines[0], ": make a full copy; nothing was written") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and one blkwrite line starting %q", code, stderr, prefix)
			}
			if !bytes.Equal(mustRead(t, dst), before) {
				t.Error("the refused resume changed the target")
			}
		})
	}
}

// TestConcurrentWriters: a second framed blkwrite into an image file that
// another one is writing is refused before it touches the file; both used
// to print "verified" while the file held one source, or a mix of both.
func TestConcurrentWriters(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	srcA, srcB, dst := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "dst")
	dataA := sample(2<<20, 8)
	writeFile(t, srcA, dataA)
	writeFile(t, srcB, sample(2<<20, 9))
	streamA, _, code := run(t, nil, blkcat, "-q", "--frame", srcA)
	if code != 0 {
		t.Fatal("blkcat --frame failed")
	}
	streamB, _, code := run(t, nil, blkcat, "-q", "--frame", srcB)
	if code != 0 {
		t.Fatal("blkcat --frame failed")
	}
	cmd, stdin, stderrA := startWriter(t, nil, "-q", dst)
	if _, err := io.WriteString(stdin, streamA[:len(streamA)/2]); err != nil {
		t.Fatal(err)
	}
	waitReadStdin(t, cmd.Process.Pid)

	_, stderr, code := run(t, []byte(streamB), testutil.Tool(t, "blkwrite"), "-q", dst)
	if want := "blkwrite: '" + dst + "' is being written by another blkwrite (flock); nothing was written\n"; code != 1 || stderr != want {
		t.Errorf("second writer: exit %d, stderr %q, want 1 and %q", code, stderr, want)
	}

	if _, err := io.WriteString(stdin, streamA[len(streamA)/2:]); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if code := exitCode(t, cmd); code != 0 || !strings.Contains(stderrA.String(), "blkwrite: verified blake3 ") {
		t.Fatalf("first writer: exit %d: %s", code, stderrA)
	}
	if !bytes.Equal(mustRead(t, dst), dataA) {
		t.Error("the target is not the first writer's source")
	}
}

// TestCutInMagic: a stream that ends inside the framed magic (a sender
// that died in its first write) is refused by blkwrite DST and --framed,
// target untouched; blkwrite used to copy those bytes as raw data,
// truncating an image file to them, and exit 0. of=DST and --raw still
// copy them as dd would.
func TestCutInMagic(t *testing.T) {
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	old := sample(8192, 10)
	magic := "\x89BLKP\r\n\x1a"
	for _, n := range []int{1, 4, 7} {
		for _, tc := range []struct {
			args   []string
			refuse bool
		}{
			{nil, true},
			{[]string{"--framed"}, true},
			{[]string{"--raw"}, false},
		} {
			dst := filepath.Join(dir, "dst")
			writeFile(t, dst, old)
			_, stderr, code := run(t, []byte(magic[:n]), blkwrite, append(tc.args, "-q", dst)...)
			want := "blkwrite: 'standard input' ends inside a framed stream's header (did the sender fail?): '" + dst + "' was left as it was; --raw copies it as data\n"
			if tc.refuse && (code != 1 || stderr != want || !bytes.Equal(mustRead(t, dst), old)) {
				t.Errorf("%d bytes %v: exit %d, stderr %q; want exit 1, %q and the target as it was", n, tc.args, code, stderr, want)
			}
			if !tc.refuse && (code != 0 || string(mustRead(t, dst)) != magic[:n]) {
				t.Errorf("%d bytes %v: exit %d, stderr %q; want the bytes copied", n, tc.args, code, stderr)
			}
		}
		// From a file, too (a kept stream file cut short).
		cut := filepath.Join(dir, "cut")
		writeFile(t, cut, []byte(magic[:n]))
		dst := filepath.Join(dir, "dst")
		writeFile(t, dst, old)
		if _, stderr, code := run(t, nil, blkwrite, "--framed", "if="+cut, "of="+dst); code != 1 || !strings.Contains(stderr, "ends inside a framed stream's header") {
			t.Errorf("if= %d bytes: exit %d, stderr %q", n, code, stderr)
		}
	}
}

// TestFileSystemFull: a copy into an image file on a file system that
// fills up names the file and says the file system is full (it used to
// say "target is smaller than the input", which an image file never is),
// and a framed copy records how far it got; once there is room the resume
// verifies.
func TestFileSystemFull(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mount", "umount", "bash")
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	src := filepath.Join(t.TempDir(), "src")
	data := randomBytes(3<<20, 11) // no zero blocks, which would stay holes
	writeFile(t, src, data)
	dst := filepath.Join(mnt, "dst")

	_, stderr, code := sh(t, nil, "$BC -q "+src+" | $BW -q "+dst)
	want := "blkwrite: writing to '" + dst + "': No space left on device\n" +
		"blkwrite: the file system holding '" + dst + "' is full: 2097152 bytes landed on it, the rest did not fit\n"
	if code != 1 || stderr != want {
		t.Errorf("raw: exit %d, stderr %q; want 1, %q", code, stderr, want)
	}

	os.Remove(dst)
	_, stderr, code = sh(t, nil, "$BC -q --frame "+src+" | $BW -q "+dst)
	want = "blkwrite: error writing '" + dst + "' at offset 2097152: No space left on device (the file system holding it is full)\n" +
		"blkwrite: the copy is incomplete: 2097152 bytes landed on '" + dst + "'; do not use the target\n" +
		"blkwrite: resume point saved at byte 2097152 of 3145728: "
	if code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("framed: exit %d, stderr %q; want 1, starting %q", code, stderr, want)
	}
	testutil.Run(t, "mount", "-o", "remount,size=4m", mnt)
	_, stderr, code = sh(t, nil, "$BC -q --resume \"$($BW --resume-point "+dst+")\" "+src+" | $BW -q "+dst)
	if code != 0 || !strings.Contains(stderr, "blkwrite: verified blake3 ") || !bytes.Equal(mustRead(t, dst), data) {
		t.Errorf("resume after making room: exit %d: %s", code, stderr)
	}
}

// TestSumsSidecarOnSIGPIPE: blkcat --sums killed by SIGPIPE (the other end
// of a nightly delta went away) leaves at most one temporary sidecar per
// device, which the next run takes over; every such night used to leave a
// new randomly named file of 0.2 % of the device in the state directory.
func TestSumsSidecarOnSIGPIPE(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	state := t.TempDir()
	img := testutil.SparseFile(t, 1<<30) // 2 MiB of sums: more than a pipe holds
	env := []string{"BLKPIPE_STATE_DIR=" + state}
	for i := 0; i < 2; i++ {
		_, stderr, code := sh(t, env, "$BC -q --sums "+img+" | head -c 1000 >/dev/null; echo ${PIPESTATUS[0]} >&2")
		if code != 0 || stderr != "141\n" {
			t.Fatalf("blkcat --sums | head: %q, want 141 (SIGPIPE)", stderr)
		}
	}
	entries, _ := os.ReadDir(state)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".sums.tmp") {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state directory after two cut --sums runs: %q, want one *.sums.tmp", names)
	}
	if _, stderr, code := sh(t, env, "$BC -q --sums "+img+" >/dev/null"); code != 0 {
		t.Fatalf("blkcat --sums: exit %d: %s", code, stderr)
	}
	entries, _ = os.ReadDir(state)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".sums") {
		t.Errorf("state directory after a complete --sums: %v, want only the sidecar", entries)
	}
}

// TestFailedFullStreamKeepsResumePoint: a full stream that fails before it
// changes the target (its sender died after the header) leaves the
// interrupted copy's resume point, which then resumes; blkwrite used to
// drop the point as soon as the full stream's header checked out.
func TestFailedFullStreamKeepsResumePoint(t *testing.T) {
	testutil.NeedCmd(t, "bash", "head")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := sample(6<<20, 12)
	writeFile(t, src, data)
	_, stderr, code := sh(t, nil, "$BC -q --frame "+src+" | head -c 3000000 | $BW -q "+dst)
	if code != 1 || !strings.Contains(stderr, "blkwrite: resume point saved at byte ") {
		t.Fatalf("cut copy: exit %d: %s", code, stderr)
	}
	blkwrite := testutil.Tool(t, "blkwrite")
	tok, _, _ := run(t, nil, blkwrite, "--resume-point", dst)
	_, stderr, code = sh(t, nil, "$BC -q --frame "+src+" | head -c 64 | $BW -q "+dst)
	if code != 1 || strings.Contains(stderr, "incomplete") {
		t.Fatalf("full stream cut after its header: exit %d: %s", code, stderr)
	}
	if again, stderr, _ := run(t, nil, blkwrite, "--resume-point", dst); again != tok {
		t.Fatalf("resume point after a full stream that changed nothing: %q %s, want %q", again, stderr, tok)
	}
	_, stderr, code = sh(t, nil, "$BC -q --resume \"$($BW --resume-point "+dst+")\" "+src+" | $BW -q "+dst)
	if code != 0 || !bytes.Equal(mustRead(t, dst), data) {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
}

// TestSenderSignalBeforeCopy: blkcat stops at once on SIGINT or SIGTERM
// while it hashes the part of SRC a resume point covers (minutes, for most
// of a large device) or waits for the block sums of a delta from a stalled
// ssh; it used to go on until the hash was done or the sums came.
func TestSenderSignalBeforeCopy(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 64 << 30 // sparse: the hash, not the disk, takes the time
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, size); err != nil {
		t.Fatal(err)
	}
	t.Run("resume hash", func(t *testing.T) {
		tok := "00112233445566778899aabbccddeeff:" + strconv.Itoa(size-4096) + ":" + strconv.Itoa(size)
		cmd := exec.Command(blkcat, "-q", "--resume", tok, src)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		go io.Copy(io.Discard, stdout)
		waitOpen(t, cmd.Process.Pid, src) // the signal handler is in place by then
		cmd.Process.Signal(syscall.SIGINT)
		// As dd, blkcat dies of SIGINT (the shell shows 130).
		if code := exitCode(t, cmd); code != 130 || !cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled() || stderr.String() != "" {
			t.Errorf("exit %d, stderr %q; want killed by SIGINT, silently", code, stderr.String())
		}
	})
	t.Run("stalled sums", func(t *testing.T) {
		cmd := exec.Command(blkcat, "-q", "--against", "-", src)
		var stderr bytes.Buffer
		cmd.Stderr, cmd.Stdout = &stderr, io.Discard
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitReadStdin(t, cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		if code := exitCode(t, cmd); code != 130 || !strings.HasSuffix(stderr.String(), "blkcat: interrupted\n") {
			t.Errorf("exit %d, stderr %q; want 130 and \"blkcat: interrupted\"", code, stderr.String())
		}
	})
}

// TestSourceShrinks: SRC that shrinks while blkcat --frame or --sums reads
// it (an image being replaced) cuts the stream without END (or trailer)
// and is named as the culprit; blkcat used to say "error writing
// 'standard output'" (or "error writing block sums to ...").
func TestSourceShrinks(t *testing.T) {
	t.Run("frame", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "src")
		writeFile(t, src, randomBytes(64<<20, 13))
		sourceShrinks(t, src, "--frame", "frame: source size mismatch: source ended at ", " bytes, declared 67108864\n")
	})
	t.Run("sums", func(t *testing.T) {
		src := testutil.SparseFile(t, 1<<30) // 2 MiB of sums, more than a pipe holds
		sourceShrinks(t, src, "--sums", "source size mismatch: ", " bytes fed, 1073741824 declared\n")
	})
}

// sourceShrinks runs blkcat MODE SRC into a pipe it does not read until
// blkcat blocks writing, shrinks SRC to 1 MiB, and wants the message.
func sourceShrinks(t *testing.T, src, mode, detail, tail string) {
	cmd := exec.Command(testutil.Tool(t, "blkcat"), "-q", mode, src)
	cmd.Env = append(os.Environ(), "BLKPIPE_STATE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitSyscall(t, cmd.Process.Pid, "1 0x1 ") // blocked writing: the pipe is full
	if err := os.Truncate(src, 1<<20); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	code := exitCode(t, cmd)
	want := "blkcat: '" + src + "' changed size while it was read: " + detail
	if code != 1 || !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), tail) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and a first line starting %q", code, stderr.String(), want)
	}
}
