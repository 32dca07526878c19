package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(tb testing.TB) (master, slave *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Skip(tb, "no pseudo-terminals: "+err.Error())
	}
	tb.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { slave.Close() })
	return master, slave
}

// ptyOutput collects what the terminal shows.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// TestRunTerminal: snapctl typed at a prompt (the foreground job of a
// terminal) hands the terminal to CMD, so that CMD can read it (ssh asking
// for a password) instead of being stopped by SIGTTIN for ever; ^Z stops
// the job and it goes on when continued.
func TestRunTerminal(t *testing.T) {
	_, img, _ := setup(t, "xfs")
	for _, tc := range []struct {
		name  string
		input []string // typed once CMD has started, one by one
	}{
		{"read", []string{"hello\n"}},
		{"suspend", []string{"\x1a", "hello\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			started := filepath.Join(t.TempDir(), "started")
			// As a login shell starts a job: snapctl leads its own
			// session on the terminal. The session is orphaned, so
			// snapctl's own stop after ^Z is dropped by the kernel
			// and it continues CMD at once.
			cmd := exec.Command(testutil.Tool(t, "snapctl"), "run", img, "--", "sh", "-c", "touch "+started+"; read x; echo got $x")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			var out ptyOutput
			go func() {
				b := make([]byte, 4096)
				for {
					n, err := master.Read(b)
					out.mu.Lock()
					out.buf.Write(b[:n])
					out.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					// CMD's group, if snapctl left it behind.
					if ps, err := exec.Command("pgrep", "-s", fmt.Sprint(cmd.Process.Pid)).Output(); err == nil {
						for _, p := range strings.Fields(string(ps)) {
							exec.Command("kill", "-9", p).Run()
						}
					}
					<-done
				}
			})
			for i := 0; i < 200; i++ {
				if _, err := os.Stat(started); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, in := range tc.input {
				time.Sleep(300 * time.Millisecond)
				master.WriteString(in)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("snapctl still running 20 s after CMD got its input; terminal shows %q", out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(out.String(), "got hello") {
				t.Errorf("exit %d, terminal shows %q; want 0 and got hello", code, out.String())
			}
			if got := listPaths(t, "reflink"); len(got) != 0 {
				t.Errorf("snapshots left behind: %v", got)
			}
		})
	}
}
