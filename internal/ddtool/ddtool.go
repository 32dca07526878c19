// Package ddtool is the dd front end blkcat and blkwrite share: their
// common options and dd operands (Parser), opening the input as dd's flags
// say, signals, the run of a dd copy with its report, and the exit code.
// Each tool composes these with its own side (internal/send for blkcat,
// internal/receive for blkwrite) in its cmd/ directory.
package ddtool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/buildinfo"
	"github.com/blkpipe/blkpipe/internal/ddargs"
)

// Exit codes, the same for both tools and shown in their --help.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitRefused     = 3 // blkwrite --allow refused the request
	ExitInterrupted = 130
)

// ErrInterrupted is returned when SIGINT or SIGTERM stopped the copy.
var ErrInterrupted = errors.New("interrupted")

// ErrRefused is returned when a restricted blkwrite (--allow) is asked to do
// something its allow list does not permit.
var ErrRefused = errors.New("refused")

// ErrHelp and ErrVersion are returned by Parse for --help and --version;
// the tool prints its text and exits 0.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// ExitCode maps an error from a tool's run to its exit code. This is the
// one place the mapping lives.
func ExitCode(err error) int {
	switch {
	case err == nil, err == ErrHelp, err == ErrVersion:
		return ExitOK
	case errors.Is(err, ddargs.ErrUsage), errors.Is(err, errUsage):
		return ExitUsage
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, ErrRefused):
		return ExitRefused
	default:
		return ExitFailure
	}
}

var errUsage = errors.New("usage")

// usageError is a command-line error; its text is printed as is.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

// Usage returns a command-line error whose text msg is printed as is;
// the tool exits 2.
func Usage(msg string) error { return &usageError{msg} }

// errReported marks an error whose message was already printed.
type errReported struct{ err error }

func (e *errReported) Error() string { return e.err.Error() }
func (e *errReported) Unwrap() error { return e.err }

// Reported marks err as already printed, so Exit prints nothing more.
func Reported(err error) error { return &errReported{err} }

// IsReported reports whether err's message was already printed.
func IsReported(err error) bool {
	var r *errReported
	return errors.As(err, &r)
}

// Exit ends a run of the tool name that returned err: it prints err to
// stderr unless it was printed already, dies of SIGINT when that
// interrupted the run, and returns the exit code for os.Exit.
func Exit(name string, err error) int {
	if interruptSignal(err) == os.Interrupt {
		// dd prints its statistics on SIGINT (the run did) and then dies
		// of the signal, so that a shell running it stops too: bash goes
		// on with a script whose child exited 130, but not with one
		// whose child SIGINT killed. The run has restored the default
		// action.
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		time.Sleep(time.Second) // the signal is asynchronous
	}
	printError(os.Stderr, name, err)
	return ExitCode(err)
}

// printError prints err as "name: msg" on w unless it needs no message or
// was printed already.
func printError(w io.Writer, name string, err error) {
	if err != nil && err != ErrHelp && err != ErrVersion && !IsReported(err) {
		// dd prints the warnings of the operands it parsed before the
		// one it refuses ("bs=0x5": the zero multiplier, then "invalid
		// number").
		for _, m := range ddargs.Warnings(err) {
			fmt.Fprintf(w, "%s: %s\n", name, m)
		}
		fmt.Fprintf(w, "%s: %v\n", name, err)
	}
}

// Help answers ErrHelp with usage and ErrVersion with the version line of
// the tool name, on stdout; it returns err either way, for Exit.
func Help(err error, name, usage string, stdout io.Writer) error {
	switch err {
	case ErrHelp:
		fmt.Fprint(stdout, usage)
	case ErrVersion:
		fmt.Fprintln(stdout, buildinfo.Line(name))
	}
	return err
}
