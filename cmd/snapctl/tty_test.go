package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(tb testing.TB) (master, slave *os.File) { return testutil.OpenPTY(tb) }

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
			cmd := exec.Command(testutil.Tool(t, "snapctl"), "run", img, "--", "sh", "-c", "echo $$ > "+started+".tmp; mv "+started+".tmp "+started+"; read x; echo got $x")
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
			var pid int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if b, err := os.ReadFile(started); err == nil {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CMD did not start within 10 s; terminal shows %q", out.String())
				}
			}
			for _, in := range tc.input {
				// Each keystroke goes to CMD once it reads the terminal
				// (after ^Z: once the kernel has echoed it, so the input
				// flush the signal character causes is behind us, and
				// CMD, continued, reads again).
				testutil.WaitReadStdin(t, pid)
				master.WriteString(in)
				if in == "\x1a" {
					for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "^Z"); time.Sleep(20 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatalf("the terminal never echoed ^Z; it shows %q", out.String())
						}
					}
				}
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("snapctl still running 20 s after CMD got its input; terminal shows %q", out.String())
			}
			// The terminal's output may still be on its way to the
			// reader goroutine when snapctl has exited.
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "got hello") && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
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
