package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// tmux drives a tmux server of the test's own (its own socket).
type tmux struct {
	t    *testing.T
	sock string
}

func (m tmux) run(args ...string) string {
	m.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-L", m.sock, "-f", "/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen returns the pane's non-empty lines.
func (m tmux) screen() []string {
	m.t.Helper()
	var lines []string
	for _, l := range strings.Split(m.run("capture-pane", "-p"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	return lines
}

// TestTerminalDisplay runs pvcat in a real pseudo-terminal (a tmux pane
// 100 columns wide), feeds it in steps and reads the screen: one bar line,
// redrawn in place as the percentage grows, kept with the totals at the end.
func TestTerminalDisplay(t *testing.T) {
	testutil.NeedCmd(t, "tmux")
	bin := testutil.Tool(t, "pvcat")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "in")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "run.sh")
	const quarter = 1 << 20
	body := fmt.Sprintf("#!/bin/sh\n%q -i 0.1 -s %d < %q > /dev/null\necho PVCAT-EXIT=$?\nexec sleep 600\n", bin, 4*quarter, fifo)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	m := tmux{t, fmt.Sprintf("pvcat-test-%d", os.Getpid())}
	m.run("new-session", "-d", "-x", "100", "-y", "10", script)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.sock, "kill-server").Run() })

	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for pvcat's shell to open it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := make([]byte, quarter)
	// waitFor polls the screen until ok accepts it.
	waitFor := func(what string, ok func([]string) bool) []string {
		t.Helper()
		var s []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if s = m.screen(); ok(s) {
				return s
			}
		}
		t.Fatalf("screen never showed %s:\n%s", what, strings.Join(s, "\n"))
		return nil
	}
	for i, pct := range []string{" 25%", " 50%", " 75%"} {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		s := waitFor("the bar at"+pct, func(s []string) bool {
			return len(s) == 1 && strings.Contains(s[0], pct)
		})
		l := s[0]
		if !strings.Contains(l, "MiB") || !strings.Contains(l, "[") || !strings.Contains(l, "=>") ||
			!strings.Contains(l, "ETA ") || !strings.Contains(l, "0:00:0") || len(l) > 99 {
			t.Errorf("step %d: bar line %q lacks bytes, rate, bar, percent, ETA or elapsed, or is too wide", i, l)
		}
	}
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	w.Close()
	s := waitFor("the exit", func(s []string) bool {
		return len(s) == 2 && s[1] == "PVCAT-EXIT=0"
	})
	if l := s[0]; !strings.HasPrefix(strings.TrimLeft(l, " "), "4.0 MiB 0:00:0") || !strings.Contains(l, "100%") ||
		!strings.Contains(l, "[====") || !strings.HasSuffix(l, "] 100% ETA 0:00:00") {
		t.Errorf("final line %q, want the totals: 4.0 MiB, a full bar, 100%%, ETA 0:00:00", l)
	}
}
