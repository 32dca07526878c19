package sshtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Proc is a process found under another.
type Proc struct {
	PID, PPID int
	Comm      string
}

// Descendants lists the processes below pid (children, grandchildren …)
// from /proc, in no particular order.
func Descendants(pid int) []Proc {
	var all []Proc
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		rest := strings.Fields(s[close+1:])
		if len(rest) < 2 {
			continue
		}
		p, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		pp, _ := strconv.Atoi(rest[1])
		all = append(all, Proc{PID: p, PPID: pp, Comm: s[open+1 : close]})
	}
	var out []Proc
	parents := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for _, p := range all {
			if parents[p.PPID] && !parents[p.PID] {
				parents[p.PID] = true
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

// WaitDescendant waits up to timeout for a process named comm below pid
// and returns it.
func WaitDescendant(pid int, comm string, timeout time.Duration) (Proc, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range Descendants(pid) {
			if p.Comm == comm {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return Proc{}, fmt.Errorf("no process %q below %d after %v", comm, pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
