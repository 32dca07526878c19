// Package earlysig catches SIGUSR1 from the first moment a tool runs.
//
// dd users send SIGUSR1 to ask for statistics, often right after starting
// the copy. Until a Go program calls signal.Notify, SIGUSR1 kills it, and
// the package initialisation of the compression libraries runs before main.
// Importing this package (it imports nothing but os/signal and its
// dependencies) installs the handler during package initialisation, ahead
// of every package that sorts after it and has heavier dependencies, so a
// signal sent during the rest of start-up is queued instead of fatal.
package earlysig

import (
	"os"
	"os/signal"
	"syscall"
)

// Depth is how many SIGUSR1 notifications are queued before more are
// dropped; dd likewise prints one report for a burst of signals.
const Depth = 16

var usr1 = make(chan os.Signal, Depth)

func init() { signal.Notify(usr1, syscall.SIGUSR1) }

// USR1 returns the channel that receives every SIGUSR1 since start-up.
// There is one channel per process; the tool's reporter is its only reader.
func USR1() <-chan os.Signal { return usr1 }
