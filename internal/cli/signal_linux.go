package cli

import (
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Raise makes the process die of sig, as dd dies of the SIGINT it caught
// once its statistics are printed, so that a shell running it stops too
// (bash goes on after a child that exited 130, not after one SIGINT
// killed). It restores sig's default action and sends sig to the calling
// thread (tgkill), which takes it before the call returns: no sleep while
// a process-wide signal finds a thread. If sig does not kill the process
// (it was ignored at start), Raise returns and main exits as it would.
// For main only.
func Raise(sig syscall.Signal) {
	signal.Reset(sig)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}
