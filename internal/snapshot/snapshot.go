// Package snapshot owns the lifecycle of the point-in-time copies that
// snapctl makes: create, list, watch, remove and garbage-collect them.
//
// Four backends are supported, picked from what the origin is:
//
//   - lvm: a classic copy-on-write snapshot of a logical volume
//     (lvcreate -s with a size). It fills as the origin is written and
//     becomes invalid (every read fails with EIO) when full.
//   - lvm-thin: a thin snapshot of a thin logical volume; it draws on the
//     thin pool and has no size of its own.
//   - btrfs: a read-only snapshot of the btrfs subvolume holding a file or
//     directory.
//   - reflink: an instant copy-on-write clone (FICLONE) of an image file on
//     XFS or btrfs.
//
// Every snapshot is marked as snapctl's own, so that List, Remove and GC
// never touch anything else: LVM snapshots carry the LVM tag "snapctl" and a
// "_snapctl_" name; file snapshots get the same name infix and a state file
// in the state directory (reflink clones also an xattr user.snapctl.origin).
//
// Everything here runs real tools (lvm, btrfs) and needs root.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Backend names a kind of snapshot.
type Backend string

// The backends; see the package documentation.
const (
	LVM     Backend = "lvm"
	LVMThin Backend = "lvm-thin"
	Btrfs   Backend = "btrfs"
	Reflink Backend = "reflink"
)

// Backends lists every backend, in the order List reports them.
var Backends = []Backend{LVM, LVMThin, Btrfs, Reflink}

// ParseBackend checks a backend name given by the user; "" and "auto" mean
// "pick from the origin" and return "".
func ParseBackend(s string) (Backend, error) {
	switch s {
	case "", "auto":
		return "", nil
	}
	for _, b := range Backends {
		if string(b) == s {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown backend %q (want lvm, lvm-thin, btrfs or reflink)", s)
}

// Errors returned by Create, Remove and Watch; test them with errors.Is.
var (
	// ErrNotRoot: snapctl needs root (lvm, btrfs and FIFREEZE need
	// CAP_SYS_ADMIN). Nothing was changed.
	ErrNotRoot = errors.New("must run as root")
	// ErrNotFound: the origin does not exist. Nothing was changed.
	ErrNotFound = errors.New("origin not found")
	// ErrExists: a snapshot of the requested name exists. Nothing was changed.
	ErrExists = errors.New("name already exists")
	// ErrNoSpace: the volume group has no room for a copy-on-write
	// snapshot of the requested size. Nothing was changed.
	ErrNoSpace = errors.New("not enough free space in the volume group")
	// ErrNoReflink: the filesystem of the origin cannot clone files
	// (FICLONE failed with EOPNOTSUPP, EINVAL or ENOTTY). Nothing was left
	// behind.
	ErrNoReflink = errors.New("filesystem does not support reflink")
	// ErrIsSnapshot: the origin is itself a snapshot. Nothing was changed.
	ErrIsSnapshot = errors.New("origin is itself a snapshot")
	// ErrUnsupported: no backend can snapshot this origin (e.g. a block
	// device that is not an LVM logical volume).
	ErrUnsupported = errors.New("no snapshot backend for this origin")
	// ErrNotOurs: Remove was given something snapctl did not make. It was
	// not touched.
	ErrNotOurs = errors.New("not a snapshot made by snapctl")
	// ErrBusy: the snapshot was still in use after every retry of the
	// removal; the error names what holds it.
	ErrBusy = errors.New("still in use")
	// ErrFilled: a copy-on-write snapshot (or the thin pool) filled past the
	// limit given to Watch; reads of it would soon fail.
	ErrFilled = errors.New("snapshot filled up")
	// ErrInvalid: a copy-on-write snapshot overflowed and was invalidated by
	// the kernel; every read of it now fails with EIO.
	ErrInvalid = errors.New("snapshot is invalid (it overflowed)")
)

// Snapshot describes one snapshot made by snapctl.
type Snapshot struct {
	// Path is what to read: the snapshot's device, file or directory.
	Path    string    `json:"path"`
	Origin  string    `json:"origin"`
	Backend Backend   `json:"backend"`
	Created time.Time `json:"created"`
	// Subvolume is the btrfs snapshot subvolume; Path may lie inside it.
	Subvolume string `json:"subvolume,omitempty"`
	// VG and LV name an LVM snapshot; Pool is the thin pool of a thin one.
	VG   string `json:"vg,omitempty"`
	LV   string `json:"lv,omitempty"`
	Pool string `json:"pool,omitempty"`
	// Size is a COW snapshot's size in bytes (0 if not applicable).
	Size uint64 `json:"size,omitempty"`
	// Fill is how full, in percent, a COW snapshot is (for a thin one: its
	// pool's data); -1 when it does not apply.
	Fill float64 `json:"fill"`
	// Invalid tells that a COW snapshot overflowed: reads return EIO.
	Invalid bool `json:"invalid,omitempty"`
	// Owner is the process that uses the snapshot and removes it when
	// done (snapctl run), 0 if none; OwnerStart is its start time (clock
	// ticks after boot), which tells it from a later process of that pid.
	Owner      int    `json:"owner,omitempty"`
	OwnerStart uint64 `json:"owner_start,omitempty"`
	// Base names the lineage whose base this snapshot is (snapctl run
	// --keep-base), if any: gc keeps it.
	Base string `json:"base,omitempty"`
	// Kept tells a version kept by blkwrite --keep (see Keep): GC never
	// removes it.
	Kept bool `json:"kept,omitempty"`
}

// ownerAlive reports whether the snapshot's owner still runs.
func (s Snapshot) ownerAlive() bool {
	if s.Owner <= 0 {
		return false
	}
	start, err := procStart(s.Owner)
	return err == nil && start == s.OwnerStart
}

// procStart returns the start time of process pid in clock ticks after
// boot (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold
	// anything: count the fields after its closing one.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Options tune Create. The zero value picks everything from the origin.
type Options struct {
	// Backend overrides the backend picked from the origin.
	Backend Backend
	// Name is the snapshot's name; by default <origin>_snapctl_<UTC time>.
	// Create fails with ErrExists if Name is taken.
	Name string
	// Size of a COW snapshot: "100%FREE" (the default: all free space in
	// the volume group), "N%ORIGIN" or "N%" (of the origin), or a size in
	// bytes with an optional unit (512M, 2G, 1T, 4096b).
	Size string
	// Dir is where btrfs and reflink snapshots go; by default .snapctl at
	// the root of the origin's filesystem. It must be on that filesystem.
	Dir string
	// Freeze names a mountpoint to freeze (FIFREEZE) for the instant of
	// the snapshot; it is always thawed before Create returns.
	Freeze string
	// Pre runs (sh -c) before the snapshot and the freeze; Post runs after
	// the thaw whenever Pre ran, even when something failed. Both see
	// SNAPCTL_ORIGIN; Post also SNAP when the snapshot exists.
	Pre, Post string
	// Owner is the pid of the process that uses the snapshot and removes
	// it when done (snapctl run); GC leaves the snapshot alone while that
	// process runs. 0: none, GC goes by age alone.
	Owner int
	// Keep marks the snapshot as a kept version (Snapshot.Kept).
	Keep bool
}

// Manager makes and tracks snapshots. The zero value uses the defaults;
// fields must not change while a method runs. Methods may be called
// concurrently.
type Manager struct {
	// StateDir keeps one file per btrfs or reflink snapshot; default
	// /var/lib/snapctl.
	StateDir string
	// Stderr receives hook output and warnings; default os.Stderr.
	Stderr io.Writer
	// RemoveTimeout bounds the retries of a removal that fails because
	// the device is in use (udev, a slow reader); default 15 s.
	RemoveTimeout time.Duration
	// ThinDelta is the thin_delta program Changes runs; "" means
	// "thin_delta" on PATH.
	ThinDelta string
	// now is time.Now, replaceable in tests.
	now func() time.Time
}

func (m *Manager) stateDir() string {
	if m.StateDir != "" {
		return m.StateDir
	}
	return "/var/lib/snapctl"
}

func (m *Manager) stderr() io.Writer {
	if m.Stderr != nil {
		return m.Stderr
	}
	return os.Stderr
}

func (m *Manager) timeNow() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

func (m *Manager) removeTimeout() time.Duration {
	if m.RemoveTimeout > 0 {
		return m.RemoveTimeout
	}
	return 15 * time.Second
}

// needRoot returns ErrNotRoot unless the process runs as root.
func needRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// nameInfix marks the names of snapctl's snapshots.
const nameInfix = "_snapctl_"

// CheckName returns the error Create gives for Options.Name if name cannot
// name a snapshot whatever the backend ("" is the default name).
func CheckName(name string) error {
	if strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return fmt.Errorf("--name %q: a name, not a path", name)
	}
	return nil
}

// defaultName is <base>_snapctl_<UTC time to the second>.
func defaultName(base string, t time.Time) string {
	return base + nameInfix + t.UTC().Format("20060102T150405")
}

// Create snapshots origin (an LVM device path or vg/lv, or a file or
// directory for btrfs and reflink) and returns the snapshot. On error
// nothing is left behind; the error wraps one of the Err values above where
// one applies.
func (m *Manager) Create(ctx context.Context, origin string, o Options) (*Snapshot, error) {
	if err := needRoot(); err != nil {
		return nil, err
	}
	b, l, err := m.pick(ctx, origin, o.Backend)
	if err != nil {
		return nil, err
	}
	switch b {
	case LVM, LVMThin:
		if o.Dir != "" {
			return nil, fmt.Errorf("--dir does not apply to backend %s (the snapshot goes into the volume group)", b)
		}
		return m.createLVM(ctx, origin, l, b, o)
	default:
		if o.Size != "" {
			return nil, fmt.Errorf("--size does not apply to backend %s (the snapshot shares the filesystem's space)", b)
		}
		return m.createFile(ctx, origin, b, o)
	}
}

// pickLV returns want (if set, else the backend LVM says origin needs)
// and origin's lvs row.
func (m *Manager) pickLV(ctx context.Context, origin string, want Backend) (Backend, lv, error) {
	l, err := m.lvInfo(ctx, origin)
	if err != nil {
		return "", lv{}, err
	}
	if want != "" {
		return want, l, nil
	}
	return lvBackend(l), l, nil
}

// pick returns the backend for origin: want if set, else from what origin
// is, and for LVM the origin's lvs row. It fails with ErrNotFound if the
// origin does not exist.
func (m *Manager) pick(ctx context.Context, origin string, want Backend) (Backend, lv, error) {
	fi, err := os.Stat(origin)
	if err != nil {
		if os.IsNotExist(err) && isVGLV(origin) {
			return m.pickLV(ctx, origin, want) // vg/lv without /dev: ask LVM
		}
		if os.IsNotExist(err) {
			return "", lv{}, fmt.Errorf("%s: %w", origin, ErrNotFound)
		}
		return "", lv{}, fmt.Errorf("stat origin: %w", err)
	}
	if fi.Mode()&os.ModeDevice != 0 {
		if want == Btrfs || want == Reflink {
			return "", lv{}, fmt.Errorf("backend %s cannot snapshot the block device %s: %w", want, origin, ErrUnsupported)
		}
		return m.pickLV(ctx, origin, want)
	}
	if want == LVM || want == LVMThin {
		return "", lv{}, fmt.Errorf("backend %s needs a logical volume, %s is not a block device: %w", want, origin, ErrUnsupported)
	}
	if want != "" {
		return want, lv{}, nil
	}
	isBtrfs, err := onBtrfs(origin)
	if err != nil {
		return "", lv{}, err
	}
	if isBtrfs {
		return Btrfs, lv{}, nil
	}
	if !fi.Mode().IsRegular() {
		return "", lv{}, fmt.Errorf("%s is a directory outside btrfs: %w", origin, ErrUnsupported)
	}
	return Reflink, lv{}, nil
}

// ListOptions filter List and GC.
type ListOptions struct {
	// Backend restricts the listing to one backend; "" lists all. Only
	// the LVM backends run lvs.
	Backend Backend
}

// List returns every snapshot made by snapctl, LVM ones (found by their
// tag) first, then btrfs and reflink ones (found in the state directory),
// each group oldest first.
func (m *Manager) List(ctx context.Context, o ListOptions) ([]Snapshot, error) {
	if err := needRoot(); err != nil {
		return nil, err
	}
	var all []Snapshot
	if o.Backend == "" || o.Backend == LVM || o.Backend == LVMThin {
		lvs, err := m.listLVM(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range lvs {
			if o.Backend == "" || s.Backend == o.Backend {
				all = append(all, s)
			}
		}
	}
	if o.Backend == "" || o.Backend == Btrfs || o.Backend == Reflink {
		fs, err := m.listFile(o.Backend)
		if err != nil {
			return nil, err
		}
		all = append(all, fs...)
	}
	bases := m.Bases()
	for i := range all {
		all[i].Base = bases[all[i].Path]
	}
	return all, nil
}

// Remove deletes the snapshot at path (as printed by Create or List) after
// checking that snapctl made it (ErrNotOurs otherwise). A removal that
// fails because the device is in use is retried with backoff for up to
// RemoveTimeout; then the error wraps ErrBusy and names what holds it.
func (m *Manager) Remove(ctx context.Context, path string) error {
	if err := needRoot(); err != nil {
		return err
	}
	if st, ok, err := m.findState(path); err != nil {
		return err
	} else if ok {
		return m.removeFile(ctx, st)
	}
	fi, err := os.Stat(path)
	if err != nil && !(os.IsNotExist(err) && isVGLV(path)) {
		if os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", path, os.ErrNotExist)
		}
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err == nil && fi.Mode()&os.ModeDevice == 0 {
		return fmt.Errorf("remove %s: %w", path, ErrNotOurs)
	}
	return m.removeLVM(ctx, path)
}

// GC removes snapctl's snapshots created more than olderThan ago, except
// those whose Owner still runs (it says so on Stderr), and returns those it
// removed. It goes on after a failed removal and returns
// the errors joined.
func (m *Manager) GC(ctx context.Context, olderThan time.Duration, o ListOptions) ([]Snapshot, error) {
	m.pruneState()
	all, err := m.List(ctx, o)
	if err != nil {
		return nil, err
	}
	cut := m.timeNow().Add(-olderThan)
	var removed []Snapshot
	var errs []error
	for _, s := range all {
		if !s.Created.Before(cut) || s.Kept {
			continue // a kept version goes only when a newer one verifies
		}
		if s.Base != "" {
			// The next copy of its lineage starts from it; the run
			// that replaces it removes it.
			fmt.Fprintf(m.stderr(), "snapctl: gc: kept %s: the base of lineage %s\n", s.Path, s.Base)
			continue
		}
		if s.ownerAlive() {
			// A long copy, not a crash's leftover: its run removes it.
			fmt.Fprintf(m.stderr(), "snapctl: gc: kept %s: snapctl run (pid %d) still uses it\n", s.Path, s.Owner)
			continue
		}
		if err := m.Remove(ctx, s.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, s)
	}
	return removed, errors.Join(errs...)
}
