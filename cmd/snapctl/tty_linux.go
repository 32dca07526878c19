package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal is snapctl's controlling terminal while snapctl is the
// terminal's foreground job (typed at a shell prompt). CMD runs in its own
// process group, so that it can be stopped whole; like a shell, snapctl
// then has to give that group the terminal, or CMD is stopped by SIGTTIN
// for ever the moment it reads the terminal (ssh asking for a password).
type terminal struct{ f *os.File }

// foregroundTerminal returns the controlling terminal if snapctl's process
// group is in its foreground, else nil (cron, a service, a background job).
func foregroundTerminal() *terminal {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil // no controlling terminal
	}
	t := &terminal{f}
	if t.foreground() != unix.Getpgrp() {
		f.Close()
		return nil
	}
	return t
}

func (t *terminal) close() { t.f.Close() }

func (t *terminal) fd() int { return int(t.f.Fd()) }

// foreground returns the terminal's foreground process group, -1 if that
// cannot be read.
func (t *terminal) foreground() int {
	pg, err := unix.IoctlGetInt(t.fd(), unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pg
}

// setForeground makes pgid the foreground group. snapctl is usually in the
// background when it calls this, where TIOCSPGRP raises SIGTTOU (and would
// stop it) unless the signal is ignored.
func (t *terminal) setForeground(pgid int) {
	if !signal.Ignored(syscall.SIGTTOU) {
		signal.Ignore(syscall.SIGTTOU)
		defer signal.Reset(syscall.SIGTTOU)
	}
	unix.IoctlSetPointerInt(t.fd(), unix.TIOCSPGRP, pgid)
}

// reclaim gives the terminal back to snapctl's group if CMD's group pgid
// holds it, or a group that no longer exists (CMD's, when Start failed
// after the child took the terminal); never if the shell took it back
// (snapctl was suspended and put in the background).
func (t *terminal) reclaim(pgid int) {
	fg := t.foreground()
	if fg <= 0 || fg == unix.Getpgrp() {
		return
	}
	if fg == pgid || errors.Is(syscall.Kill(-fg, 0), syscall.ESRCH) {
		t.setForeground(unix.Getpgrp())
	}
}

// cldStopped is si_code CLD_STOPPED of waitid: the child was stopped.
const cldStopped = 5

// follow returns once CMD (pid, leading its process group) has exited,
// leaving it to be reaped. Meanwhile it does what a shell does for a job
// stopped from the terminal (^Z): takes the terminal back and stops
// snapctl's own job the same way, and when that is continued (fg, bg),
// hands the terminal back to CMD's group if snapctl has it and continues
// CMD's group.
func (t *terminal) follow(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || info.Code != cldStopped {
			return
		}
		// Take the stop report, or the next waitid returns it again.
		unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WNOHANG, nil)
		t.reclaim(pid)
		// Returns when snapctl is continued; the kernel drops it at
		// once if snapctl's group is orphaned (its shell is gone).
		syscall.Kill(0, syscall.SIGTSTP)
		if t.foreground() == unix.Getpgrp() {
			t.setForeground(pid)
		}
		syscall.Kill(-pid, syscall.SIGCONT)
	}
}
