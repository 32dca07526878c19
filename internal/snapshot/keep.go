package snapshot

// Kept versions: snapshots that blkwrite --keep takes of its target before
// a refresh, so that the copy the target held survives the refresh. They
// are snapctl's own snapshots (listed, removable) with one more mark, the
// LVM tag snapctl_kept or "kept" in a file snapshot's state, which GC
// respects: a version goes only when blkwrite prunes it after a newer copy
// verified.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// keptTag marks a kept version among snapctl's LVM snapshots.
const keptTag = "snapctl_kept"

// versionInfix follows nameInfix in a kept version's name.
const versionInfix = "v"

// KeepName is the name Keep gives a version labelled label: the origin's
// base name (LV name or file name), "_snapctl_v", label.
func KeepName(base, label string) string {
	return base + nameInfix + versionInfix + label
}

// keepOptions drops o.Size for a thin origin: a thin version draws on
// its pool, while Size sizes a classic one.
func (m *Manager) keepOptions(ctx context.Context, origin string, lvm bool, o Options) Options {
	if lvm && o.Size != "" {
		if l, err := m.lvInfo(ctx, origin); err == nil && lvBackend(l) == LVMThin {
			o.Size = ""
		}
	}
	return o
}

// originKey is what Snapshot.Origin says for origin: vg/lv for a logical
// volume, the absolute path of a file.
func (m *Manager) originKey(ctx context.Context, origin string) (key, base string, lvm bool, err error) {
	fi, err := os.Stat(origin)
	if err == nil && fi.Mode()&os.ModeDevice == 0 {
		abs, err := filepath.Abs(origin)
		if err != nil {
			return "", "", false, err
		}
		return abs, filepath.Base(abs), false, nil
	}
	if err != nil && !(os.IsNotExist(err) && isVGLV(origin)) {
		if os.IsNotExist(err) {
			return "", "", false, fmt.Errorf("%s: %w", origin, ErrNotFound)
		}
		return "", "", false, err
	}
	l, err := m.lvInfo(ctx, origin)
	if err != nil {
		return "", "", false, err
	}
	return l.VG + "/" + l.Name, l.Name, true, nil
}

// Keep snapshots origin as a kept version named KeepName(base, label),
// with o's Backend, Size (for a classic LV; a thin one ignores it) and
// Dir. If that version exists already (an
// earlier refresh of the same copy took it), Keep returns it and made is
// false. Errors are Create's.
func (m *Manager) Keep(ctx context.Context, origin, label string, o Options) (s *Snapshot, made bool, err error) {
	_, base, lvm, err := m.originKey(ctx, origin)
	if err != nil {
		return nil, false, err
	}
	o = m.keepOptions(ctx, origin, lvm, o)
	o.Name, o.Keep = KeepName(base, label), true
	vs, err := m.Versions(ctx, origin)
	if err != nil {
		return nil, false, err
	}
	for i := range vs {
		if vs[i].Name() == o.Name {
			return &vs[i], false, nil
		}
	}
	s, err = m.Create(ctx, origin, o)
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Probe tells whether origin can be snapshotted with o, by taking a
// snapshot and removing it at once; the error is Create's or Remove's.
func (m *Manager) Probe(ctx context.Context, origin string, o Options) error {
	_, base, lvm, err := m.originKey(ctx, origin)
	if err != nil {
		return err
	}
	o = m.keepOptions(ctx, origin, lvm, o)
	o.Name, o.Keep = base+nameInfix+"probe", false
	s, err := m.Create(ctx, origin, o)
	if err != nil {
		return err
	}
	return m.Remove(context.WithoutCancel(ctx), s.Path)
}

// Versions returns the kept versions of origin, oldest first.
func (m *Manager) Versions(ctx context.Context, origin string) ([]Snapshot, error) {
	if err := needRoot(); err != nil {
		return nil, err
	}
	key, _, lvm, err := m.originKey(ctx, origin)
	if err != nil {
		return nil, err
	}
	var all []Snapshot
	if lvm {
		all, err = m.listLVM(ctx)
	} else {
		all, err = m.listFile("")
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, s := range all {
		if s.Kept && s.Origin == key {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name() < out[j].Name()
	})
	return out, nil
}

// Name is the snapshot's own name: its logical volume, or the last
// element of its file or btrfs subvolume.
func (s Snapshot) Name() string {
	switch {
	case s.LV != "":
		return s.LV
	case s.Subvolume != "":
		return filepath.Base(s.Subvolume)
	}
	return filepath.Base(s.Path)
}

// Label is the label Keep gave a kept version ("" for another snapshot).
func (s Snapshot) Label() string {
	_, label, ok := strings.Cut(s.Name(), nameInfix+versionInfix)
	if !s.Kept || !ok {
		return ""
	}
	return label
}

// UseHint says how to put the version s of origin back, or use it where it
// is, in commands a shell runs as they are.
func (s Snapshot) UseHint(origin string) string {
	read := fmt.Sprintf("or read it directly (blkcat %s)", s.Path)
	switch s.Backend {
	case LVM, LVMThin:
		return fmt.Sprintf("roll %s back to it with lvconvert --merge %s/%s (this uses the version up), %s", origin, s.VG, s.LV, read)
	}
	return fmt.Sprintf("copy it back with cp --reflink=always %s %s, %s", s.Path, origin, read)
}

// errNotKept is returned by RemoveVersion for a snapshot that is no kept
// version.
var errNotKept = errors.New("not a kept version")

// RemoveVersion removes the kept version s (as Versions returned it).
func (m *Manager) RemoveVersion(ctx context.Context, s Snapshot) error {
	if !s.Kept {
		return fmt.Errorf("remove %s: %w", s.Path, errNotKept)
	}
	return m.Remove(ctx, s.Path)
}
