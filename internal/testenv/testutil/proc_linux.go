package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitSyscall waits, for up to 30 s, until a thread of process pid is in
// the system call that /proc/PID/task/TID/syscall shows starting with
// prefix: its number (x86-64's) and first argument, such as "0 0x0 " for
// read(2) on standard input. It fails tb at the deadline, and skips (or
// fails, in CI) on other architectures.
func WaitSyscall(tb testing.TB, pid int, prefix string) {
	tb.Helper()
	NeedArch(tb, "amd64", "waits for x86-64 system call numbers in /proc/PID/task/*/syscall")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/syscall")
		for _, task := range tasks {
			if b, err := os.ReadFile(task); err == nil && strings.HasPrefix(string(b), prefix) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("process %d never was in the system call %q", pid, prefix)
}

// WaitReadStdin waits until process pid is blocked reading its standard
// input, so that what is written there next, or a signal sent now, finds
// it there.
func WaitReadStdin(tb testing.TB, pid int) {
	tb.Helper()
	WaitSyscall(tb, pid, "0 0x0 ") // syscall 0 (read) on fd 0
}
