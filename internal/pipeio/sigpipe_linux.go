package pipeio

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SigpipeInherited reports whether the program was started with SIGPIPE
// ignored (systemd's IgnoreSIGPIPE=yes, a shell's `trap "" PIPE`). dd then
// gets EPIPE from its write, reports it and exits 1, where with SIGPIPE's
// default it dies of the signal.
//
// Go's runtime installs its own SIGPIPE handler before any Go code runs,
// and neither signal.Ignored nor any other API tells what it replaced
// (golang/go#22497). The runtime does remember it: a SIGPIPE that reaches
// a thread running no goroutine (sysmon, an idle M) goes to the handler
// the program started with, and is dropped when that was SIG_IGN; with
// SIG_DFL the runtime takes it, and delivers it to Notify. So each of the
// other threads is sent a SIGPIPE, then a barrier signal that is handled
// after it (lower-numbered signals are delivered first, and os/signal
// relays them in that order): a barrier that arrives alone means the
// SIGPIPE was dropped. A thread running a goroutine relays the SIGPIPE
// either way, so the answer is "ignored" only when one thread dropped it;
// sysmon never runs goroutines. The probe takes about a millisecond.
func SigpipeInherited() bool {
	const barrierSig = syscall.Signal(64) // SIGRTMAX, unused by the runtime
	pipe := make(chan os.Signal, 1)
	barrier := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	signal.Notify(barrier, barrierSig)
	defer signal.Stop(pipe)
	defer signal.Stop(barrier)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false
	}
	pid, self := os.Getpid(), unix.Gettid()
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil || tid == self {
			continue
		}
		if unix.Tgkill(pid, tid, syscall.SIGPIPE) != nil || unix.Tgkill(pid, tid, barrierSig) != nil {
			continue // the thread exited
		}
		select {
		case <-barrier:
		case <-time.After(time.Second):
			return false // the barrier was lost too (ignored as well?): no answer
		}
		select {
		case <-pipe:
		default:
			return true
		}
	}
	return false
}
