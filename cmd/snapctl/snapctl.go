package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blkpipe/blkpipe/internal/buildinfo"
	"github.com/blkpipe/blkpipe/internal/snapshot"
)

// Exit codes; the table is printed by usage.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitOverflow    = 75 // EX_TEMPFAIL: the snapshot filled up or went invalid
	exitRunFailed   = 125
	exitCannotExec  = 126
	exitCmdNotFound = 127
	exitInterrupted = 130
)

const usageText = `usage:
  snapctl create [options] ORIGIN          print the snapshot's path
  snapctl list [--backend B] [--json]      snapshots made by snapctl, age, fill
  snapctl remove [--timeout D] SNAP...
  snapctl run [options] ORIGIN -- CMD [ARG...]
  snapctl gc --older-than D [--backend B]  remove stale snapshots (cron)
  snapctl --help | --version

Options of create and run:
  --backend B     lvm, lvm-thin, btrfs or reflink (default: from ORIGIN)
  --size S        COW snapshot size: 100%FREE (default), N%ORIGIN, N%, 512M
  --name N        snapshot name (default NAME_snapctl_TIME)
  --dir D         btrfs, reflink: where the snapshot goes (default .snapctl/
                  at the root of ORIGIN's filesystem)
  --freeze MP     freeze the filesystem at MP for the instant of the snapshot
  --pre CMD       sh -c CMD before the snapshot (e.g. pause a service)
  --post CMD      sh -c CMD after it, always, even when something failed
Options of run only:
  --interval D    how often to poll the snapshot's fill (default 2s)
  --warn PCT      warn at this fill (default 80)
  --max-fill PCT  stop CMD at this fill (default 95)
  --extend        grow the snapshot (thin: its pool) while the VG has room
  --grace D       from the signal to CMD's group to SIGKILL (default 10s)
remove: --timeout D retries a busy device for D (default 15s).

ORIGIN: an LVM logical volume (/dev/vg/lv or vg/lv), a file or directory on
btrfs, or an image file on XFS or btrfs (reflink).

run creates a snapshot of ORIGIN, runs CMD with $SNAP (and {} in its
arguments) set to the snapshot's path, and removes the snapshot on every way
out: success, failure, SIGINT/SIGTERM/SIGHUP, CMD killed. While CMD runs it
polls the fill of a COW snapshot (a thin snapshot: of its pool): at --warn it
says so, with --extend it grows the snapshot while the volume group has
room, and at --max-fill, or when the snapshot turns invalid, it stops CMD's
process group, removes the snapshot and exits 75.

A COW snapshot keeps the old copy of every block written to the origin; when
that space is full the kernel invalidates it and every read returns EIO.

Exit status:
  0    success (run: CMD succeeded)
  1    failure (create, list, remove, gc)
  2    usage error
  75   run: the snapshot filled past --max-fill or became invalid; CMD was
       stopped and the snapshot removed: retry with a bigger --size or
       --extend, a thin volume, or at a quieter time
  125  run: snapctl failed (creating or removing the snapshot)
  126  run: CMD could not be executed
  127  run: CMD not found
  130  interrupted (SIGINT, SIGTERM, SIGHUP); the snapshot was removed
  N    run: CMD's own exit status; 128+N if CMD was killed by signal N

Environment: SNAPCTL_STATE_DIR (default /var/lib/snapctl) keeps the state of
btrfs and reflink snapshots.
`

// usageError is bad command-line input: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit status; a nil err exits silently.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode maps run's error to the exit status and prints it: the one
// place where errors become exit codes.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(stderr, ee.err)
		}
		return ee.code
	}
	printError(stderr, err)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "usage: snapctl create|list|remove|run|gc … (snapctl --help)")
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// printError prints err as snapctl's message; joined errors (remove and gc
// of several snapshots) give one such line each.
func printError(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "snapctl: %s\n", strings.ReplaceAll(err.Error(), "\n", "\nsnapctl: "))
}

func newManager(stderr io.Writer) *snapshot.Manager {
	return &snapshot.Manager{StateDir: os.Getenv("SNAPCTL_STATE_DIR"), Stderr: stderr}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var ee *exitError
	if err != nil && ctx.Err() != nil && !errors.As(err, &ee) {
		// A signal cut the command short (lvs killed, a retry given up).
		return &exitError{exitInterrupted, fmt.Errorf("interrupted: %w", err)}
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command")
	}
	m := newManager(stderr)
	switch args[0] {
	case "-h", "-help", "--help", "help":
		io.WriteString(stdout, usageText)
		return nil
	case "--version", "version":
		fmt.Fprintln(stdout, buildinfo.Line("snapctl"))
		return nil
	case "create":
		return cmdCreate(ctx, m, args[1:], stdout, stderr)
	case "list", "ls":
		return cmdList(ctx, m, args[1:], stdout, stderr)
	case "remove", "rm":
		return cmdRemove(ctx, m, args[1:], stdout, stderr)
	case "gc":
		return cmdGC(ctx, m, args[1:], stdout, stderr)
	case "run":
		return cmdRun(ctx, m, args[1:], stdin, stdout, stderr)
	}
	return usagef("unknown command %q", args[0])
}

// flagSet returns a FlagSet that prints the usage text on -h and reports
// errors through usageError.
func flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("snapctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usageText)
			return err
		}
		return usagef("%s: %v", strings.TrimPrefix(fs.Name(), "snapctl "), err)
	}
	return nil
}

// createFlags are shared by create and run.
type createFlags struct {
	backend string
	opts    snapshot.Options
}

func addCreateFlags(fs *flag.FlagSet, c *createFlags) {
	fs.StringVar(&c.backend, "backend", "", "lvm, lvm-thin, btrfs or reflink")
	fs.StringVar(&c.opts.Size, "size", "", "COW snapshot size")
	fs.StringVar(&c.opts.Name, "name", "", "snapshot name")
	fs.StringVar(&c.opts.Dir, "dir", "", "directory for btrfs/reflink snapshots")
	fs.StringVar(&c.opts.Freeze, "freeze", "", "mountpoint to freeze for the snapshot")
	fs.StringVar(&c.opts.Pre, "pre", "", "command before the snapshot")
	fs.StringVar(&c.opts.Post, "post", "", "command after the snapshot")
}

// options checks the flags of command cmd (create or run) as far as that
// can be done without looking at ORIGIN.
func (c *createFlags) options(cmd string) (snapshot.Options, error) {
	b, err := snapshot.ParseBackend(c.backend)
	if err != nil {
		return c.opts, usagef("--backend: %v", err)
	}
	if err := snapshot.CheckSize(c.opts.Size); err != nil {
		return c.opts, usagef("%s: %v", cmd, err)
	}
	if err := snapshot.CheckName(c.opts.Name); err != nil {
		return c.opts, usagef("%s: %v", cmd, err)
	}
	c.opts.Backend = b
	return c.opts, nil
}

func cmdCreate(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("create")
	var cf createFlags
	addCreateFlags(fs, &cf)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("create: want one ORIGIN, got %d arguments", fs.NArg())
	}
	o, err := cf.options("create")
	if err != nil {
		return err
	}
	// The snapshot is made even if a signal comes meanwhile (a half-made
	// one would be worse); then it is removed again.
	s, err := m.Create(context.WithoutCancel(ctx), fs.Arg(0), o)
	if err != nil {
		return fmt.Errorf("create %s: %w", fs.Arg(0), err)
	}
	if ctx.Err() != nil {
		if err := m.Remove(context.WithoutCancel(ctx), s.Path); err != nil {
			return fmt.Errorf("create %s: interrupted, and removing %s failed: %w", fs.Arg(0), s.Path, err)
		}
		return &exitError{exitInterrupted, fmt.Errorf("create %s: interrupted; the snapshot was removed", fs.Arg(0))}
	}
	fmt.Fprintln(stdout, s.Path)
	return nil
}

func cmdList(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("list")
	backend := fs.String("backend", "", "list only this backend")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("list: unexpected argument %q", fs.Arg(0))
	}
	b, err := snapshot.ParseBackend(*backend)
	if err != nil {
		return usagef("--backend: %v", err)
	}
	all, err := m.List(ctx, snapshot.ListOptions{Backend: b})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if *asJSON {
		if all == nil {
			all = []snapshot.Snapshot{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "\t")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tBACKEND\tORIGIN\tAGE\tFILL")
	now := time.Now()
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Path, s.Backend, s.Origin, age(now.Sub(s.Created)), fill(s))
	}
	return tw.Flush()
}

func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

func fill(s snapshot.Snapshot) string {
	switch {
	case s.Invalid:
		return "INVALID"
	case s.Fill < 0:
		return "-"
	case s.Backend == snapshot.LVMThin:
		return fmt.Sprintf("pool %.1f%%", s.Fill)
	}
	return fmt.Sprintf("%.1f%%", s.Fill)
}

func cmdRemove(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("remove")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to retry a busy device")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("remove: want at least one SNAP")
	}
	m.RemoveTimeout = *timeout
	var errs []error
	for _, p := range fs.Args() {
		if err := m.Remove(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmdGC(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("gc")
	older := fs.Duration("older-than", -1, "remove snapshots older than this")
	backend := fs.String("backend", "", "only this backend")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("gc: unexpected argument %q", fs.Arg(0))
	}
	if *older < 0 {
		return usagef("gc: --older-than is required (e.g. 6h)")
	}
	b, err := snapshot.ParseBackend(*backend)
	if err != nil {
		return usagef("--backend: %v", err)
	}
	removed, err := m.GC(ctx, *older, snapshot.ListOptions{Backend: b})
	for _, s := range removed {
		fmt.Fprintf(stdout, "removed %s\n", s.Path)
	}
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}
