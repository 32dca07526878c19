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

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddargs"
)

// Exit codes, from the one table all tools share (cli), shown in their
// --help by cli.ExitHelp.
const (
	ExitOK          = cli.ExitOK
	ExitFailure     = cli.ExitFailure
	ExitUsage       = cli.ExitUsage
	ExitRefused     = cli.ExitRefused
	ExitInterrupted = cli.ExitInterrupted
)

// ErrInterrupted is returned when SIGINT or SIGTERM stopped the copy.
var ErrInterrupted = cli.ErrInterrupted

// ErrRefused is returned when a restricted blkwrite (--allow) is asked to do
// something its allow list does not permit.
var ErrRefused = errors.New("refused")

// ExitCode maps an error from a tool's run to its exit code. This is the
// one place the mapping lives.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp), errors.Is(err, cli.ErrVersion):
		return ExitOK
	case errors.Is(err, ddargs.ErrUsage), errors.Is(err, cli.ErrUsage):
		return ExitUsage
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, ErrRefused):
		return ExitRefused
	default:
		return ExitFailure
	}
}

// Usage returns a command-line error whose text msg is printed as is,
// followed by cli's Try line; the tool exits 2.
func Usage(msg string) error { return &cli.UsageError{Err: errors.New(msg)} }

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
func Exit(name string, err error, stderr io.Writer) int {
	if interruptSignal(err) == os.Interrupt {
		// dd prints its statistics on SIGINT (the run did) and then dies
		// of the signal, so that a shell running it stops too: bash goes
		// on with a script whose child exited 130, but not with one
		// whose child SIGINT killed.
		cli.Raise(syscall.SIGINT)
	}
	printError(stderr, name, err)
	return ExitCode(err)
}

// printError prints err as "name: msg" on w (with cli's Try line after a
// usage error) unless it needs no message or was printed already.
func printError(w io.Writer, name string, err error) {
	if err != nil && !errors.Is(err, cli.ErrHelp) && !errors.Is(err, cli.ErrVersion) && !IsReported(err) {
		// dd prints the warnings of the operands it parsed before the
		// one it refuses ("bs=0x5": the zero multiplier, then "invalid
		// number").
		for _, m := range ddargs.Warnings(err) {
			fmt.Fprintf(w, "%s: %s\n", name, m)
		}
		cli.PrintError(w, name, err)
	}
}
