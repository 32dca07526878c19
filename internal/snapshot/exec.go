package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"golang.org/x/sys/unix"
)

// cmdError is a failed external command: its name, arguments and stderr.
type cmdError struct {
	Cmd    string
	Err    error
	Stderr string
}

func (e *cmdError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	// Keep the message on one line: the last lines of stderr carry the
	// reason, LVM warnings come first.
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, strings.Join(lines, "; "))
}

func (e *cmdError) Unwrap() error { return e.Err }

// command runs name with args and returns its stdout; a failure is a
// *cmdError holding stderr. LVM's warnings about leaked descriptors are
// silenced: they are noise from being started by Go or a shell.
func command(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1", "LC_ALL=C")
	if err := c.Run(); err != nil {
		return stdout.Bytes(), &cmdError{Cmd: name + " " + strings.Join(args, " "), Err: err, Stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// hook runs a --pre or --post command with sh -c, its output on stderr.
func (m *Manager) hook(ctx context.Context, which, script string, env []string) error {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	c.Stdout, c.Stderr = m.stderr(), m.stderr()
	c.Env = append(os.Environ(), env...)
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s hook %q: %w", which, script, err)
	}
	return nil
}

// sameFS reports whether a and b are on the same filesystem (st_dev).
func sameFS(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// instant takes a snapshot with take between the hooks and inside the
// freeze of o. writeDirs are directories take writes to: freezing the
// filesystem of one of them would hang take, so that is refused up front.
// The filesystem is always thawed and Post always runs, after the thaw. If
// take succeeded but thawing or Post failed, both snap and err are non-nil.
func (m *Manager) instant(ctx context.Context, origin string, o Options, writeDirs []string, take func() (*Snapshot, error)) (snap *Snapshot, err error) {
	if o.Freeze != "" {
		fi, serr := os.Stat(o.Freeze)
		if serr != nil {
			return nil, fmt.Errorf("--freeze: %w", serr)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("--freeze %s: not a mountpoint (not a directory)", o.Freeze)
		}
		for _, d := range writeDirs {
			if sameFS(o.Freeze, d) {
				return nil, fmt.Errorf("--freeze %s: the snapshot itself is written to that filesystem (%s); freezing it would hang", o.Freeze, d)
			}
		}
	}
	env := []string{"SNAPCTL_ORIGIN=" + origin}
	if o.Post != "" {
		// Post runs even when Pre failed or ctx was cancelled (SIGINT):
		// it typically resumes a service that Pre paused.
		defer func() {
			penv := env
			if snap != nil {
				penv = append(penv, "SNAP="+snap.Path)
			}
			if perr := m.hook(context.WithoutCancel(ctx), "post", o.Post, penv); perr != nil {
				err = errors.Join(err, perr)
			}
		}()
	}
	if o.Pre != "" {
		// Not killed on a cancelled ctx either: a hook that pauses a
		// service must not be cut in the middle.
		if err := m.hook(context.WithoutCancel(ctx), "pre", o.Pre, env); err != nil {
			return nil, err
		}
	}
	if o.Freeze != "" {
		if err := blockdev.Freeze(o.Freeze); err != nil {
			return nil, fmt.Errorf("freeze %s: %w", o.Freeze, err)
		}
		defer func() {
			if terr := blockdev.Thaw(o.Freeze); terr != nil {
				terr = fmt.Errorf("thaw %s: %w", o.Freeze, terr)
				err = errors.Join(err, terr)
			}
		}()
	}
	return take()
}
