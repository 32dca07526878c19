package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/snapshot"
)

// Exit codes, from the table all tools share (cli.ExitHelp prints it).
const (
	exitOK          = cli.ExitOK
	exitFailure     = cli.ExitFailure
	exitUsage       = cli.ExitUsage
	exitOverflow    = cli.ExitOverflow // EX_TEMPFAIL: the snapshot filled up or went invalid
	exitRunFailed   = cli.ExitRunFailed
	exitCannotExec  = cli.ExitCannotExec
	exitCmdNotFound = cli.ExitNotFound
	exitInterrupted = cli.ExitInterrupted
)

var usageText = `usage:
  snapctl create [options] ORIGIN          print the snapshot's path
  snapctl list [--backend B] [--json]      snapshots made by snapctl, age, fill
                                           (",kept": a version of blkwrite --keep)
  snapctl remove [--timeout D] SNAP...
  snapctl run [options] ORIGIN -- CMD [ARG...]
  snapctl gc --older-than D [--backend B]  remove stale snapshots (cron), never
                                           a kept version or a live base
  snapctl changes BASE SNAP                what changed from BASE to SNAP,
                                           as blkcat --changes reads it
  snapctl -h|--help | -V|--version

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
  --keep-base NAME  keep a lineage NAME for changed-block copies: CMD also
                  gets $BASE, the snapshot of NAME's last successful run
                  (empty on the first run, or when the base is missing,
                  invalid, full or older than NAME's last verified copy;
                  $BASE_NOTE then says why); when CMD
                  succeeds, the new snapshot becomes NAME's base and the
                  previous base is removed; when it fails, the new one is
                  removed and the base kept. list shows bases, gc keeps them
remove: --timeout D retries a busy device for D (default 15s).
D is seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d, 7d, 1d12h).

ORIGIN: an LVM logical volume (/dev/vg/lv or vg/lv), a file or directory on
btrfs, or an image file on XFS or btrfs (reflink).

run creates a snapshot of ORIGIN, runs CMD with $SNAP (and {} in its
arguments) set to the snapshot's path, and removes the snapshot on every way
out: success, failure, SIGINT/SIGTERM/SIGHUP, CMD killed. While CMD runs it
polls the fill of a COW snapshot (a thin snapshot: of its pool): at --warn it
says so, with --extend it grows the snapshot while the volume group has
room, and at --max-fill, or when the snapshot turns invalid, it stops CMD's
process group, removes the snapshot and exits 75.

changes prints the byte ranges of SNAP that may differ from BASE, two
snapshots of one origin, from their metadata: extents of two files
(reflink clones, btrfs snapshots), thin_delta of two thin snapshots, or the
exception store of the older of two classic snapshots (take SNAP first).
It fails, printing nothing, when no trustworthy list exists (an overflowed
snapshot, other kinds): then make a sums delta or a full copy.

A COW snapshot keeps the old copy of every block written to the origin; when
that space is full the kernel invalidates it and every read returns EIO.

Environment: the state of btrfs and reflink snapshots is kept in
$BLKPIPE_STATE_DIR/snapctl if BLKPIPE_STATE_DIR is set, else in
$SNAPCTL_STATE_DIR, else in /var/lib/snapctl if it exists (an install from
before BLKPIPE_STATE_DIR), else in /var/lib/blkpipe/snapctl.

` + cli.ExitHelp("snapctl")

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
	var ee *exitError
	if errors.As(err, &ee) {
		cli.PrintError(stderr, "snapctl", ee.err)
		return ee.code
	}
	cli.PrintError(stderr, "snapctl", err)
	switch {
	case errors.Is(err, cli.ErrUsage):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// stateDir is where snapctl keeps the state of btrfs and reflink
// snapshots; existing installs keep /var/lib/snapctl.
var stateDir = cli.SnapctlStateDir

func newManager(getenv func(string) string, stderr io.Writer) *snapshot.Manager {
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	return &snapshot.Manager{StateDir: stateDir.Path(getenv, isDir), Stderr: stderr}
}

// run is snapctl without the process; getenv reads its environment
// (os.Getenv in main).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdin, stdout, stderr)
	if done, err := cli.HelpOrVersion(err, stdout, "snapctl", usageText); done {
		return err
	}
	var ee *exitError
	if err != nil && ctx.Err() != nil && !errors.As(err, &ee) {
		// A signal cut the command short (lvs killed, a retry given up).
		return &exitError{exitInterrupted, fmt.Errorf("interrupted: %w", err)}
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("missing command")
	}
	m := newManager(getenv, stderr)
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return cli.ErrHelp
	case "-V", "-version", "--version", "version":
		return cli.ErrVersion
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
	case "changes":
		return cmdChanges(ctx, m, args[1:], stdout, stderr)
	}
	if strings.HasPrefix(args[0], "-") {
		return cli.Usagef("unknown option '%s'", args[0])
	}
	return cli.Usagef("unknown command '%s'", args[0])
}

// parse parses a command's options, up to the first operand (ORIGIN, SNAP):
// what follows is left alone, for run's CMD.
func parse(args []string, opts ...cli.Option) ([]string, error) {
	p := cli.Parser{Options: opts, InOrder: true}
	return p.Parse(args)
}

// createFlags are the options shared by create and run.
type createFlags struct {
	opts snapshot.Options
}

// options returns the options of create and run.
func (c *createFlags) options() []cli.Option {
	return []cli.Option{
		cli.Func(0, "backend", func(v string) (err error) { c.opts.Backend, err = snapshot.ParseBackend(v); return err }),
		cli.String(0, "size", &c.opts.Size),
		cli.String(0, "name", &c.opts.Name),
		cli.String(0, "dir", &c.opts.Dir),
		cli.String(0, "freeze", &c.opts.Freeze),
		cli.String(0, "pre", &c.opts.Pre),
		cli.String(0, "post", &c.opts.Post),
	}
}

// check checks the options of command cmd (create or run) as far as that
// can be done without looking at ORIGIN.
func (c *createFlags) check(cmd string) (snapshot.Options, error) {
	if err := snapshot.CheckSize(c.opts.Size); err != nil {
		return c.opts, cli.Usagef("%s: %w", cmd, err)
	}
	if err := snapshot.CheckName(c.opts.Name); err != nil {
		return c.opts, cli.Usagef("%s: %w", cmd, err)
	}
	return c.opts, nil
}

func cmdCreate(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	var cf createFlags
	operands, err := parse(args, cf.options()...)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return cli.Usagef("create: want one ORIGIN, got %d arguments", len(operands))
	}
	origin := operands[0]
	o, err := cf.check("create")
	if err != nil {
		return err
	}
	// The snapshot is made even if a signal comes meanwhile (a half-made
	// one would be worse); then it is removed again.
	s, err := m.Create(context.WithoutCancel(ctx), origin, o)
	if err != nil {
		return fmt.Errorf("create %s: %w", origin, err)
	}
	if ctx.Err() != nil {
		if err := m.Remove(context.WithoutCancel(ctx), s.Path); err != nil {
			return fmt.Errorf("create %s: interrupted, and removing %s failed: %w", origin, s.Path, err)
		}
		return &exitError{exitInterrupted, fmt.Errorf("create %s: interrupted; the snapshot was removed", origin)}
	}
	fmt.Fprintln(stdout, s.Path)
	return nil
}

// backendOption is --backend of list and gc.
func backendOption(lo *snapshot.ListOptions) cli.Option {
	return cli.Func(0, "backend", func(v string) (err error) { lo.Backend, err = snapshot.ParseBackend(v); return err })
}

func cmdList(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	var lo snapshot.ListOptions
	var asJSON bool
	operands, err := parse(args, backendOption(&lo), cli.Bool(0, "json", &asJSON))
	if err != nil {
		return err
	}
	if len(operands) != 0 {
		return cli.Usagef("list: unexpected argument %q", operands[0])
	}
	all, err := m.List(ctx, lo)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if asJSON {
		if all == nil {
			all = []snapshot.Snapshot{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "\t")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tBACKEND\tORIGIN\tAGE\tFILL\tBASE OF")
	now := time.Now()
	for _, s := range all {
		base := "-"
		if s.Base != "" {
			base = s.Base
		}
		backend := string(s.Backend)
		if s.Kept {
			backend += ",kept" // a version of blkwrite --keep: gc leaves it
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Path, backend, s.Origin, age(now.Sub(s.Created)), fill(s), base)
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
	m.RemoveTimeout = 15 * time.Second
	snaps, err := parse(args, cli.Duration(0, "timeout", &m.RemoveTimeout))
	if err != nil {
		return err
	}
	if len(snaps) == 0 {
		return cli.Usagef("remove: want at least one SNAP")
	}
	var errs []error
	for _, p := range snaps {
		if err := m.Remove(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmdGC(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	older := time.Duration(-1)
	var lo snapshot.ListOptions
	operands, err := parse(args, cli.Duration(0, "older-than", &older), backendOption(&lo))
	if err != nil {
		return err
	}
	if len(operands) != 0 {
		return cli.Usagef("gc: unexpected argument %q", operands[0])
	}
	if older < 0 {
		return cli.Usagef("gc: --older-than is required (e.g. 6h, 1d)")
	}
	removed, err := m.GC(ctx, older, lo)
	for _, s := range removed {
		fmt.Fprintf(stdout, "removed %s\n", s.Path)
	}
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}
