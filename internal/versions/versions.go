// Package versions is blkwrite --keep: before a refresh writes its first
// byte, the copy the target holds is snapshotted as a kept version named
// after its copy record (when it verified, and its digest); once the new
// copy verifies, only the newest N versions stay; when it fails, every
// version stays and the last good one is named with how to use it.
//
// A version's copy record and digest map are kept in the state directory
// under the version's own path (state.Dir.CopyPath(version)), so that it
// is listed with its digest, can be checked, and can be the base of a
// delta like any verified copy.
//
// A target that never verified a copy has no good version to protect: no
// version is taken, but --keep still checks (by taking and removing a
// snapshot) that the target can be snapshotted, so that a target --keep
// cannot protect is refused before its first copy, not found out later.
package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/blkpipe/blkpipe/internal/snapshot"
	"github.com/blkpipe/blkpipe/internal/state"
)

// DefaultCOWSize is the size of a classic (non-thin) LVM version: as big
// as its origin, so that not even a full rewrite can overflow it and
// invalidate the version it exists to keep.
const DefaultCOWSize = "100%ORIGIN"

// Keeper keeps the versions of one target across one blkwrite run.
// Before, Verified and After are called in that order from one goroutine.
type Keeper struct {
	N      int               // versions to keep, at least 1
	Target string            // the target as given
	State  state.Dir         // blkwrite's state directory
	Snap   *snapshot.Manager // makes, lists and removes the versions
	// COWSize is a classic LVM version's size (snapctl --size syntax);
	// "" is DefaultCOWSize.
	COWSize string
	Stderr  io.Writer // notes, prefixed with Tool
	Tool    string    // "blkwrite"

	last     *snapshot.Snapshot // the newest good version, if any
	lastCopy state.Copy         // its copy record
	haveCopy bool               // lastCopy is known
}

func (k *Keeper) notef(format string, a ...any) {
	fmt.Fprintf(k.Stderr, "%s: --keep: %s\n", k.Tool, fmt.Sprintf(format, a...))
}

// Label names a version after the copy record c: the UTC time it
// verified and the first 16 hex digits of its digest.
func Label(c state.Copy) string {
	d := c.Digest
	if len(d) > 16 {
		d = d[:16]
	}
	return c.Time.UTC().Format("20060102T150405Z") + "_" + d
}

// Before protects what the target holds before anything is written to it:
// a verified copy is kept as a version (or found kept already); a target
// holding no verified copy gets no new version, but must be one the
// backends can snapshot. Its error means the refresh must not start.
func (k *Keeper) Before(ctx context.Context) error {
	if k.N < 1 {
		return fmt.Errorf("--keep %d: keep at least 1 version", k.N)
	}
	vs, err := k.Snap.Versions(ctx, k.Target)
	if err != nil {
		return k.refuse(err)
	}
	c, err := k.State.LoadCopy(k.Target)
	if errors.Is(err, os.ErrNotExist) {
		if len(vs) == 0 {
			if err := k.Snap.Probe(ctx, k.Target, k.options()); err != nil {
				return k.refuse(err)
			}
			k.notef("%s holds no verified copy yet: no version to keep before this one", k.Target)
			return nil
		}
		k.setLast(vs[len(vs)-1])
		k.notef("%s holds no verified copy (an earlier refresh did not finish): no new version; its last good version is %s", k.Target, k.describe())
		return nil
	}
	if err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	if err := k.checkCopy(c); err != nil {
		return err
	}
	s, made, err := k.Snap.Keep(ctx, k.Target, Label(c), k.options())
	if err != nil {
		return k.refuse(err)
	}
	k.last = s
	if made {
		if err := k.saveRecord(*s, c); err != nil {
			return err
		}
	}
	k.lastCopy, k.haveCopy = c, true
	if made {
		k.notef("kept version %s", k.describe())
	} else {
		k.notef("version %s was kept already", k.describe())
	}
	// The target's record stays until blkwrite first writes to it
	// (receive removes it then): a changed-block stream checks its base
	// against it before writing anything.
	return nil
}

// checkCopy refuses a copy record that no longer describes the target:
// something else wrote to it since (another identity, a file's mtime).
func (k *Keeper) checkCopy(c state.Copy) error {
	f, err := os.Open(k.Target)
	if err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	defer f.Close()
	id, err := state.Identify(f)
	if err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	if !c.Same(id) {
		return fmt.Errorf("--keep: %s changed since its copy record (%s %s, verified %s) was written: it is no verified copy to keep; check it, or remove %s to refresh it without keeping it",
			k.Target, c.Alg, c.Digest, c.Time.UTC().Format(time.RFC3339), k.State.CopyPath(k.Target))
	}
	return nil
}

func (k *Keeper) refuse(err error) error {
	return fmt.Errorf("--keep: %s cannot be kept as a version, nothing was written: %w", k.Target, err)
}

func (k *Keeper) options() snapshot.Options {
	size := k.COWSize
	if size == "" {
		size = DefaultCOWSize
	}
	o := snapshot.Options{}
	if lvm, err := isDevice(k.Target); err == nil && lvm {
		o.Size = size
	}
	return o
}

func isDevice(p string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return fi.Mode()&os.ModeDevice != 0, nil
}

// saveRecord keeps the copy record c and the target's digest map under the
// version s, so that it is listed, checked and restored like a copy.
func (k *Keeper) saveRecord(s snapshot.Snapshot, c state.Copy) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("--keep: open version %s: %w", s.Path, err)
	}
	id, err := state.Identify(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	v := c
	v.Target = s.Path
	v.SetID(id)
	if err := k.State.SaveCopy(v); err != nil {
		return fmt.Errorf("--keep: record version %s: %w", s.Path, err)
	}
	b, err := os.ReadFile(k.State.MapPath(k.Target))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = k.State.SaveMap(s.Path, b)
	}
	if err != nil {
		return fmt.Errorf("--keep: digest map of version %s: %w", s.Path, err)
	}
	return nil
}

func (k *Keeper) setLast(s snapshot.Snapshot) {
	k.last = &s
	if c, err := k.State.LoadCopy(s.Path); err == nil {
		k.lastCopy, k.haveCopy = c, true
	}
}

// describe names the last good version: its path, digest and time.
func (k *Keeper) describe() string {
	if k.last == nil {
		return "none"
	}
	if !k.haveCopy {
		return fmt.Sprintf("%s (taken %s, no copy record)", k.last.Path, k.last.Created.UTC().Format(time.RFC3339))
	}
	c := k.lastCopy
	return fmt.Sprintf("%s (%s %s of %d bytes, verified %s)", k.last.Path, c.Alg, c.Digest, c.Size, c.Time.UTC().Format(time.RFC3339))
}

// Verified records the copy blkwrite just verified on the target, unless a
// record is there already (blkwrite's own, with its digest map).
func (k *Keeper) Verified(alg, digest, streamID string, size int64) error {
	if _, err := k.State.LoadCopy(k.Target); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	f, err := os.Open(k.Target)
	if err != nil {
		return err
	}
	defer f.Close()
	id, err := state.Identify(f)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(k.Target)
	if err != nil {
		return err
	}
	c := state.Copy{Target: abs, Size: size, Alg: alg, Digest: digest, StreamID: streamID, Time: time.Now().UTC()}
	c.SetID(id)
	return k.State.SaveCopy(c)
}

// After ends the run: copyErr nil (the copy verified) prunes the versions
// to the newest N; otherwise every version stays and the last good one is
// named with how to use it. It returns an error only for a failed prune.
func (k *Keeper) After(ctx context.Context, copyErr error) error {
	ctx = context.WithoutCancel(ctx)
	if copyErr != nil {
		if k.last == nil {
			k.notef("%s did not get a verified copy, and there is no earlier version of it", k.Target)
			return nil
		}
		k.notef("%s did not get a verified copy; its last good version is %s: %s",
			k.Target, k.describe(), k.last.UseHint(k.Target))
		return nil
	}
	vs, err := k.Snap.Versions(ctx, k.Target)
	if err != nil {
		return fmt.Errorf("--keep: list the versions of %s: %w", k.Target, err)
	}
	var errs []error
	for len(vs) > k.N {
		old := vs[0]
		vs = vs[1:]
		if err := k.Snap.RemoveVersion(ctx, old); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := k.State.RemoveCopy(old.Path); err != nil {
			errs = append(errs, err)
		}
		k.notef("removed version %s (keeping %d)", old.Path, k.N)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	return nil
}

// List writes the versions of target, oldest first, and then its current
// copy: path, time verified, size and digest from each one's copy record
// ("-" where there is none).
func List(ctx context.Context, m *snapshot.Manager, dir state.Dir, target string, w io.Writer) error {
	vs, err := m.Versions(ctx, target)
	if err != nil {
		return fmt.Errorf("versions of %s: %w", target, err)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tVERIFIED\tSIZE\tDIGEST\tBACKEND")
	row := func(name, path, backend string) {
		c, err := dir.LoadCopy(path)
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", name, backend)
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s:%s\t%s\n", name, c.Time.UTC().Format(time.RFC3339), c.Size, c.Alg, c.Digest, backend)
	}
	for _, s := range vs {
		row(s.Path, s.Path, string(s.Backend))
	}
	row(target+" (current)", target, "-")
	return tw.Flush()
}
