package changes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Thin takes change lists from an LVM thin pool with thin_delta(8), which
// reads the pool's metadata through a metadata snapshot the pool keeps
// while it runs. Configuration is in the fields; the zero values of the
// program fields mean the commands on PATH.
type Thin struct {
	// Pool is the device-mapper name of the thin-pool target that takes
	// the messages, for LVM "VG-POOL-tpool" (dmsetup message's device).
	Pool string
	// Metadata is the pool's metadata device thin_delta reads, for LVM
	// "/dev/mapper/VG-POOL_tmeta".
	Metadata string
	// Lock is a lock file (created if missing) that serialises metadata
	// snapshots of this pool among the processes using the same path: a
	// pool holds only one at a time.
	Lock string

	ThinDelta string // thin_delta program; "" means "thin_delta"
	Dmsetup   string // dmsetup program; "" means "dmsetup"
}

// releaseTimeout bounds the release of the metadata snapshot, which runs
// even after ctx is cancelled.
const releaseTimeout = 30 * time.Second

// Delta returns what changed from the thin device with id older to the one
// with id newer (lvs -o thin_id), both snapshots in t's pool that must not
// change meanwhile (read-only or inactive). In order it takes t.Lock
// (waiting for other holders until ctx ends), reserves the pool's metadata
// snapshot (dmsetup message POOL 0 reserve_metadata_snap), runs
// thin_delta -m --snap1 older --snap2 newer on t.Metadata and parses its
// output, then releases the metadata snapshot (release_metadata_snap) and
// the lock. The release runs whatever happened, also when ctx is cancelled
// (as by a signal: thin_delta is killed first), and its failure is
// reported. Only a SIGKILL of the process leaves the metadata snapshot
// reserved; Release drops it.
//
// A reserve that fails (another metadata snapshot exists, as after a
// SIGKILL) is an error and nothing is released. The ranges are bytes of
// the thin devices; clip them to the volume's size (Align), as thin_delta
// may list blocks past the end of a shrunk volume.
func (t *Thin) Delta(ctx context.Context, older, newer uint64) (td *ThinDelta, err error) {
	unlock, err := lockFile(ctx, t.Lock)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.message(ctx, "reserve_metadata_snap"); err != nil {
		if root := t.heldRoot(ctx); root != "" {
			return nil, fmt.Errorf("%w; thin pool %s already holds a metadata snapshot (at block %s): a thin_delta or thin_dump outside snapctl uses it, "+
				"or the run that reserved it was killed; if none runs, release it with dmsetup message %s 0 release_metadata_snap", err, t.Pool, root, t.Pool)
		}
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := t.message(rctx, "release_metadata_snap"); rerr != nil {
			td, err = nil, errors.Join(err, rerr)
		}
	}()
	td, err = t.run(ctx, older, newer)
	if err != nil {
		return nil, err
	}
	if td.Left != older || td.Right != newer {
		return nil, fmt.Errorf("thin_delta compared thin devices %d and %d, not %d and %d", td.Left, td.Right, older, newer)
	}
	return td, nil
}

// Release drops the pool's metadata snapshot (dmsetup message POOL 0
// release_metadata_snap) under t.Lock: the way out after a process holding
// one was killed. It fails if the pool has none.
func (t *Thin) Release(ctx context.Context) error {
	unlock, err := lockFile(ctx, t.Lock)
	if err != nil {
		return err
	}
	defer unlock()
	return t.message(ctx, "release_metadata_snap")
}

// heldRoot returns the block of the metadata snapshot the pool holds, from
// its status (the field after the data blocks), or "" when it holds none
// or the status cannot be read.
func (t *Thin) heldRoot(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, orDefault(t.Dmsetup, "dmsetup"), "status", t.Pool).Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "thin-pool" && i+4 < len(f) && f[i+4] != "-" {
			return f[i+4]
		}
	}
	return ""
}

func (t *Thin) message(ctx context.Context, msg string) error {
	prog := orDefault(t.Dmsetup, "dmsetup")
	cmd := exec.CommandContext(ctx, prog, "message", t.Pool, "0", msg)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s message %s 0 %s: %w%s", prog, t.Pool, msg, ctxErr(ctx, err), firstLine(stderr.Bytes()))
	}
	return nil
}

func (t *Thin) run(ctx context.Context, older, newer uint64) (*ThinDelta, error) {
	kctx, kill := context.WithCancel(ctx)
	defer kill()
	prog := orDefault(t.ThinDelta, "thin_delta")
	args := []string{"-m", "--snap1", strconv.FormatUint(older, 10), "--snap2", strconv.FormatUint(newer, 10), t.Metadata}
	what := prog + " " + strings.Join(args, " ")
	cmd := exec.CommandContext(kctx, prog, args...)
	cmd.WaitDelay = 5 * time.Second
	stderr := &capped{max: 64 << 10}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	td, perr := ParseThinDelta(stdout)
	if perr != nil {
		kill() // nobody reads what it still writes
	}
	werr := cmd.Wait()
	if cmd.ProcessState != nil && cmd.ProcessState.Success() && ctx.Err() == nil {
		// thin_delta exited 0: an error from Wait is the kill() above,
		// racing its exit, and the parse error says what was wrong.
		werr = nil
	}
	exited := cmd.ProcessState != nil && cmd.ProcessState.Exited()
	switch {
	case werr != nil && (perr == nil || exited || ctx.Err() != nil):
		// thin_delta failed (its output is then truncated, so its
		// message says more) or ctx ended.
		return nil, fmt.Errorf("%s: %w%s", what, ctxErr(ctx, werr), firstLine(stderr.b.Bytes()))
	case perr != nil:
		return nil, fmt.Errorf("%s: %w", what, perr)
	}
	return td, nil
}

// ctxErr prefers the context's error to the "signal: killed" it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := context.Cause(ctx); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// firstLine returns ": " and the first non-empty line of b, or "".
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return ": " + l
		}
	}
	return ""
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	b   bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// lockPoll is how often lockFile retries a held lock.
const lockPoll = 20 * time.Millisecond

// lockFile takes an exclusive flock on path (creating it, mode 0600),
// retrying while another holder has it until ctx ends, and returns the
// function that releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	if path == "" {
		return nil, errors.New("thin_delta: no lock file configured")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	var tick *time.Ticker
	for {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if tick == nil {
			tick = time.NewTicker(lockPoll)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, context.Cause(ctx))
		case <-tick.C:
		}
	}
	return func() {
		flock(f, unix.LOCK_UN)
		f.Close()
	}, nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.Flock(int(fd), how) }); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: ferr}
	}
	return nil
}
