package ddtool

import (
	"io"
	"os"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
)

// Run is a dd tool's run: the tool with its real world passed in. name is
// the name its messages carry, getenv is os.Getenv (read once, in run).
type Run func(name string, args []string, stdin, stdout *os.File, stderr io.Writer, getenv func(string) string) error

// Main is a dd tool's main: it calls run with the process's arguments,
// standard files and environment, prints the error run returns unless it
// was printed already, and exits with the code ExitCode gives it. The
// tool's name is "dd" when it was started through a link named dd
// (ddmsg.ProgName); a run that succeeded but could not write to standard error
// exits 1, as dd does.
func Main(tool string, run Run) {
	name := ddmsg.ProgName(tool, os.Args[0])
	stderr := ddmsg.NewStderr(os.Stderr)
	err := run(name, os.Args[1:], os.Stdin, os.Stdout, stderr, os.Getenv)
	code := Exit(name, err, stderr)
	if code == ExitOK && stderr.Failed() {
		code = ExitFailure
	}
	os.Exit(code)
}

// HelpOrError is what a dd tool's run returns when parsing its command
// line gave err: for -h/--help (ErrHelp) it writes help to stdout, for
// -V/--version (ErrVersion) the version line, and returns err, which exits
// 0, or the error of that write; any other err is returned as it is.
func HelpOrError(err error, stdout io.Writer, tool, help string) error {
	if done, werr := cli.HelpOrVersion(err, stdout, tool, help); done && werr != nil {
		return werr
	}
	return err
}
