// Package cli is the command-line voice the blkpipe tools share: getopt's
// options (bundled short options, --long=value), GNU-style usage errors
// followed by a "Try 'TOOL --help'" line, -V/--version, durations, the exit
// codes and their --help text, the state directory, and SIGINT/SIGTERM as
// a cancelled context.
//
// The package never exits the process and reads no environment by itself:
// main hands it os.Getenv and decides the exit code from the error. A tool
// is wired like this:
//
//	var quiet bool
//	var stall time.Duration
//	p := cli.Parser{Options: []cli.Option{
//		cli.Bool('q', "quiet", &quiet),
//		cli.Duration(0, "stall", &stall),
//	}}
//	operands, err := p.Parse(args)
//	if done, err := cli.HelpOrVersion(err, stdout, "tool", help); done {
//		return err // nil: -h or -V answered, exit 0
//	}
//	if err != nil {
//		return err // a *cli.UsageError: main prints it with cli.PrintError, exit 2
//	}
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/blkpipe/blkpipe/internal/buildinfo"
)

// ErrUsage matches every usage error: errors.Is(err, cli.ErrUsage) means
// the command line was wrong and the tool exits ExitUsage.
var ErrUsage = errors.New("usage error")

// UsageError is a bad command line. Its message is printed as is after
// "TOOL: ", followed by the Try line (PrintError).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the cause, so that errors.Is still sees an open error
// behind "-s @FILE".
func (e *UsageError) Unwrap() error { return e.Err }

// Is reports ErrUsage as matching.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// Usagef returns a *UsageError formatted as fmt.Errorf does (%w wraps).
func Usagef(format string, a ...any) error {
	return &UsageError{fmt.Errorf(format, a...)}
}

// ErrHelp and ErrVersion are Parse's answers to -h/--help and
// -V/--version: the tool prints its help or version and exits 0.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// HelpOrVersion answers ErrHelp by writing help to stdout and ErrVersion
// by writing tool's version line; it then returns true and the error of
// that write. For any other err it returns false and err unchanged.
func HelpOrVersion(err error, stdout io.Writer, tool, help string) (bool, error) {
	switch {
	case errors.Is(err, ErrHelp):
		_, err = io.WriteString(stdout, help)
		return true, err
	case errors.Is(err, ErrVersion):
		_, err = io.WriteString(stdout, VersionLine(tool))
		return true, err
	}
	return false, err
}

// VersionLine is what every tool's -V/--version prints: its name and
// blkpipe's version, "pvcat (devel) 0123456789ab\n".
func VersionLine(tool string) string { return buildinfo.Line(tool) + "\n" }

// PrintError writes err to w as tool's message, "tool: detail"; each line
// of a multi-line error (errors.Join) gets the prefix. A usage error is
// followed by "Try 'tool --help' for more information.", as GNU's tools
// print it. A nil err prints nothing.
func PrintError(w io.Writer, tool string, err error) {
	if err == nil {
		return
	}
	msg := tool + ": " + strings.ReplaceAll(err.Error(), "\n", "\n"+tool+": ") + "\n"
	if errors.Is(err, ErrUsage) {
		msg += TryLine(tool)
	}
	io.WriteString(w, msg)
}

// TryLine is the line after a usage error.
func TryLine(tool string) string {
	return "Try '" + tool + " --help' for more information.\n"
}
