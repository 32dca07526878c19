package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/snapshot"
	"golang.org/x/sys/unix"
)

// cmdRun is `snapctl run [options] ORIGIN -- CMD [ARG...]`.
func cmdRun(ctx context.Context, m *snapshot.Manager, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cf createFlags
	wo := snapshot.WatchOptions{Interval: 2 * time.Second, Warn: 80, MaxFill: 95}
	grace := 10 * time.Second
	var keep string
	rest, err := parse(args, append(cf.options(),
		cli.String(0, "keep-base", &keep),
		cli.Duration(0, "interval", &wo.Interval),
		cli.Float(0, "warn", &wo.Warn),
		cli.Float(0, "max-fill", &wo.MaxFill),
		cli.Bool(0, "extend", &wo.Extend),
		cli.Duration(0, "grace", &grace))...)
	if err != nil {
		return err
	}
	if len(rest) < 1 {
		return cli.Usagef("run: want ORIGIN -- CMD [ARG...]")
	}
	origin, argv := rest[0], rest[1:]
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	} else if len(argv) > 0 && strings.HasPrefix(argv[0], "-") {
		// Options end at ORIGIN, so `run ORIGIN --size 8M -- CMD` would
		// snapshot without the option and then run "--size" as CMD.
		return cli.Usagef("run: %q after ORIGIN: options go before ORIGIN, CMD after --", argv[0])
	}
	if len(argv) == 0 {
		return cli.Usagef("run: missing CMD after ORIGIN --")
	}
	if wo.Interval <= 0 || wo.Warn <= 0 || wo.MaxFill <= 0 || wo.MaxFill > 100 || wo.Warn > wo.MaxFill {
		return cli.Usagef("run: want --interval > 0 and 0 < --warn <= --max-fill <= 100")
	}
	o, err := cf.check("run")
	if err != nil {
		return err
	}
	if err := snapshot.CheckName(keep); keep != "" && err != nil {
		return cli.Usagef("run: --keep-base: %w", err)
	}
	// gc leaves the snapshot alone while this run goes on.
	o.Owner = os.Getpid()
	wo.Stderr = stderr
	// run reacts to signals itself (below): the snapshot must outlive a
	// cancelled ctx until CMD has stopped.
	ctx = context.WithoutCancel(ctx)

	// Catch the signals before the snapshot exists, so that none of them
	// can end snapctl between create and remove.
	// A signal snapctl was started with ignored (nohup, a background
	// job of a script) stays ignored, for CMD too, which inherits it.
	// (signal.Notify with no signal would relay every one.)
	sigs := make(chan os.Signal, 4)
	if catch := cli.Catchable(stopSignals...); len(catch) > 0 {
		signal.Notify(sigs, catch...)
	}
	defer signal.Stop(sigs)

	snap, err := m.Create(ctx, origin, o)
	if err != nil {
		return &exitError{exitRunFailed, fmt.Errorf("run: create %s: %w", origin, err)}
	}
	// From here on the snapshot is removed whatever happens; removal must
	// not be cut short by a cancelled ctx.
	rctx := context.WithoutCancel(ctx)
	remove := func(status error) error {
		if err := m.Remove(rctx, snap.Path); err != nil {
			return &exitError{exitRunFailed, fmt.Errorf("run: %v; and removing the snapshot failed: %w", describe(status), err)}
		}
		return status
	}
	select {
	case sig := <-sigs:
		return remove(&exitError{exitInterrupted, fmt.Errorf("run: interrupted by %v before CMD started; snapshot removed", sig)})
	default:
	}

	base, baseNote := lineageBase(ctx, m, keep, *snap, stderr)
	if keep != "" {
		// The new snapshot becomes the base once CMD succeeded; the
		// previous base goes only then.
		removeSnap := remove
		remove = func(status error) error {
			if status != nil {
				return removeSnap(status)
			}
			if err := m.KeepBase(rctx, keep, *snap); err != nil {
				return &exitError{exitRunFailed, fmt.Errorf("run: CMD succeeded, but keeping %s as the base of %s failed: %w", snap.Path, keep, err)}
			}
			return nil
		}
	}
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "{}", snap.Path)
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "SNAP="+snap.Path, "BASE="+base, "BASE_NOTE="+baseNote)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	// Its own process group, so that a pipeline under sh -c is stopped whole.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	tty := foregroundTerminal()
	if tty != nil {
		defer tty.close()
		c.SysProcAttr.Foreground, c.SysProcAttr.Ctty = true, tty.fd()
	}
	if err := c.Start(); err != nil {
		if tty != nil {
			tty.reclaim(-1)
		}
		code := exitCannotExec
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = exitCmdNotFound
		}
		return remove(&exitError{code, fmt.Errorf("run: %w", err)})
	}
	waited := make(chan error, 1)
	go func() {
		if tty != nil {
			tty.follow(c.Process.Pid)
		}
		err := c.Wait()
		if tty != nil {
			// Before snapctl writes to it (stty tostop would stop a
			// background writer).
			tty.reclaim(c.Process.Pid)
		}
		waited <- err
	}()

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan error, 1)
	go func() { watched <- m.Watch(wctx, *snap, wo) }()

	var status error
	select {
	case <-waited:
		status = cmdStatus(c.ProcessState)
		stopWatch()
		<-watched
		// A snapshot that overflowed since the last poll is reported
		// as such, not as CMD's generic failure (its reads returned
		// EIO), and also when CMD exited 0: a pipeline without
		// pipefail or dd conv=noerror hides the failed read, and the
		// copy is incomplete all the same.
		if st, err := m.Status(rctx, *snap); err == nil && st.Invalid {
			status = overflow(fmt.Errorf("snapshot %s/%s: %w", st.VG, st.LV, snapshot.ErrInvalid))
		}
	case sig := <-sigs:
		stopWatch()
		stopGroup(c, sig.(syscall.Signal), grace, waited, sigs)
		<-watched
		status = &exitError{exitInterrupted, fmt.Errorf("run: interrupted by %v: stopped CMD and removed the snapshot", sig)}
	case werr := <-watched:
		// Watch returns only on overflow while wctx is live.
		stopGroup(c, syscall.SIGTERM, grace, waited, sigs)
		status = overflow(werr)
	}
	return remove(status)
}

// overflow is the exit-75 error for a snapshot that filled or went invalid.
func overflow(err error) error {
	return &exitError{exitOverflow, fmt.Errorf("run: %w; stopped CMD and removed the snapshot, so its copy is incomplete. "+
		"The origin changed more than the snapshot could hold: retry with a bigger --size (or --extend), a thin volume, or at a quieter time", err)}
}

// describe says what status means, for a message about a later failure.
func describe(status error) string {
	var ee *exitError
	switch {
	case status == nil:
		return "CMD succeeded"
	case errors.As(status, &ee) && ee.err == nil:
		return fmt.Sprintf("CMD exited %d", ee.code)
	}
	return status.Error()
}

// cmdStatus turns CMD's end into snapctl's: nil for success, its exit
// status, or 128+N when killed by signal N (as a shell reports it).
func cmdStatus(ps *os.ProcessState) error {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case ps.Success():
		return nil
	case ok && ws.Signaled():
		return &exitError{128 + int(ws.Signal()), fmt.Errorf("run: CMD killed by signal %d (%s)", ws.Signal(), unix.SignalName(ws.Signal()))}
	}
	return &exitError{ps.ExitCode(), nil}
}

// stopGroup sends sig to CMD's process group, then SIGKILL after grace or
// at a second signal, and waits for CMD to end.
func stopGroup(c *exec.Cmd, sig syscall.Signal, grace time.Duration, waited <-chan error, sigs <-chan os.Signal) {
	pgid := c.Process.Pid
	syscall.Kill(-pgid, sig)
	// A group stopped from the terminal (^Z) gets the signal only once
	// continued.
	syscall.Kill(-pgid, syscall.SIGCONT)
	if sig != syscall.SIGTERM {
		// sh ignores SIGINT while it waits for a foreground child; a
		// SIGTERM behind it makes sure the group goes.
		syscall.Kill(-pgid, syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-waited
	case <-sigs:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-waited
	}
	// Leftovers of the group (a background reader) would hold the snapshot.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// lineageBase returns the base of lineage keep for the new snapshot snap,
// or "" and why there is none (also said on stderr when a recorded base
// cannot be used).
func lineageBase(ctx context.Context, m *snapshot.Manager, keep string, snap snapshot.Snapshot, stderr io.Writer) (path, note string) {
	if keep == "" {
		return "", ""
	}
	b, err := m.Base(ctx, keep, snap)
	switch {
	case err == nil:
		return b.Path, ""
	case errors.Is(err, snapshot.ErrNoBase):
		return "", "first run of lineage " + keep
	}
	fmt.Fprintf(stderr, "snapctl: run: %v; not used\n", err)
	return "", err.Error()
}
