package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// busyWords are what lvremove, dmsetup and btrfs say when a device is
// still open (udev's blkid, a reader, a mount).
var busyWords = []string{"in use", "busy", "open logical volume", "device or resource busy"}

func isBusy(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, w := range busyWords {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// retryBusy calls remove until it succeeds, fails for another reason than
// the device being in use, or RemoveTimeout passes (backoff 50 ms doubling
// to 1 s). Then the error wraps ErrBusy and tells what holds the device.
func (m *Manager) retryBusy(ctx context.Context, what string, remove func() error, holders func() string) error {
	deadline := time.Now().Add(m.removeTimeout())
	wait := 50 * time.Millisecond
	tries := 0
	for {
		tries++
		err := remove()
		if err == nil {
			return nil
		}
		if !isBusy(err) {
			return fmt.Errorf("remove %s: %w", what, err)
		}
		if time.Now().Add(wait).After(deadline) {
			h := holders()
			if h == "" {
				h = "nothing visible holds it (a process in another mount namespace?)"
			}
			return fmt.Errorf("remove %s: %w after %d tries in %v: %s", what, ErrBusy, tries, m.removeTimeout(), h)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("remove %s: %w", what, ctx.Err())
		}
		if wait < time.Second {
			wait *= 2
		}
	}
}

// holdersOfDev describes what holds the block device major:minor: device
// mapper or md devices stacked on it, mounts, and processes with it open.
func holdersOfDev(major, minor uint32) string {
	var parts []string
	sys := fmt.Sprintf("/sys/dev/block/%d:%d/holders", major, minor)
	if ents, err := os.ReadDir(sys); err == nil {
		for _, e := range ents {
			name := e.Name()
			if b, err := os.ReadFile(filepath.Join(sys, name, "dm", "name")); err == nil {
				name += " (" + strings.TrimSpace(string(b)) + ")"
			}
			parts = append(parts, "device "+name)
		}
	}
	mm := fmt.Sprintf("%d:%d", major, minor)
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 4 && fs[2] == mm {
				parts = append(parts, "mounted at "+unescapeMount(fs[4]))
			}
		}
		f.Close()
	}
	want := unix.Mkdev(major, minor)
	parts = append(parts, processes(func(st *unix.Stat_t) bool {
		return st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want
	})...)
	return strings.Join(parts, ", ")
}

// holdersOfPath describes the processes with files under dir open or with
// their working directory there, and mounts on it.
func holdersOfPath(dir string) string {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return ""
	}
	dev := st.Dev
	return strings.Join(processes(func(s *unix.Stat_t) bool { return s.Dev == dev }), ", ")
}

// processes lists "pid N (comm)" for each process with an open file, cwd
// or root that match accepts.
func processes(match func(*unix.Stat_t) bool) []string {
	procs, _ := os.ReadDir("/proc")
	var out []string
	for _, p := range procs {
		pid := p.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		links := []string{"/proc/" + pid + "/cwd"}
		if fds, err := os.ReadDir("/proc/" + pid + "/fd"); err == nil {
			for _, fd := range fds {
				links = append(links, "/proc/"+pid+"/fd/"+fd.Name())
			}
		}
		for _, l := range links {
			var st unix.Stat_t
			if unix.Stat(l, &st) == nil && match(&st) {
				comm, _ := os.ReadFile("/proc/" + pid + "/comm")
				out = append(out, fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm))))
				break
			}
		}
	}
	return out
}
