package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/blkpipe/blkpipe/internal/atomicfile"
)

// A lineage is a chain of snapshots of one origin, each the base of the
// next copy: a changed-block copy reads only what changed between the
// lineage's base (the snapshot the target's last verified copy was made
// from) and a new snapshot. snapctl run --keep-base NAME keeps the
// snapshot of a run whose command succeeded as NAME's new base and only
// then removes the previous one. The record is the file bases/NAME in the
// state directory, holding the base's Snapshot as JSON.
//
// Beside it, verified/NAME holds the Snapshot whose copy last verified in
// the lineage, written first by KeepBase. The two name the same snapshot
// unless the base record was put back from an older state (a restored
// backup of the state directory, a record edited by hand) or KeepBase
// stopped between the two writes: then the target holds a newer copy than
// the base, a delta from the base would not apply to it, and Base reports
// the base as older than the last verified copy instead of offering it.

// ErrNoBase: the lineage has no base recorded (its first run).
var ErrNoBase = errors.New("no base recorded")

// ErrBaseUnusable: the lineage's recorded base cannot serve as one
// (missing, of another origin, invalid or full); the error says which.
var ErrBaseUnusable = errors.New("base not usable")

func (m *Manager) baseFile(name string) string {
	return filepath.Join(m.stateDir(), "bases", name)
}

// Base returns lineage name's base, checked against snap, the new
// snapshot it is to be compared with: it must still exist (as snapctl's),
// be a snapshot of snap's origin by the same backend, made when the
// record says (not another one that took its name), and (a COW
// snapshot) be neither invalid nor full. The error matches ErrNoBase when
// none is recorded, ErrBaseUnusable when it fails a check.
func (m *Manager) Base(ctx context.Context, name string, snap Snapshot) (*Snapshot, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(m.baseFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lineage %s: %w", name, ErrNoBase)
	}
	if err != nil {
		return nil, err
	}
	var rec Snapshot
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("lineage %s: %w: record %s is damaged: %v", name, ErrBaseUnusable, m.baseFile(name), err)
	}
	if err := m.checkVerified(name, rec); err != nil {
		return nil, err
	}
	all, err := m.List(ctx, ListOptions{Backend: rec.Backend})
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		// The path alone is not enough: a base removed by hand frees its
		// name, which a snapshot made in the same second takes again.
		if s.Path != rec.Path || s.Path == snap.Path || !s.Created.Equal(rec.Created) {
			continue
		}
		switch {
		case s.Origin != snap.Origin || s.Backend != snap.Backend:
			return nil, fmt.Errorf("lineage %s: %w: base %s is a %s snapshot of %s, the new one a %s snapshot of %s",
				name, ErrBaseUnusable, s.Path, s.Backend, s.Origin, snap.Backend, snap.Origin)
		case s.Invalid:
			return nil, fmt.Errorf("lineage %s: %w: base %s is invalid (it overflowed)", name, ErrBaseUnusable, s.Path)
		case s.Backend == LVM && s.Fill >= 100:
			return nil, fmt.Errorf("lineage %s: %w: base %s is full", name, ErrBaseUnusable, s.Path)
		}
		return &s, nil
	}
	return nil, fmt.Errorf("lineage %s: %w: base %s is missing", name, ErrBaseUnusable, rec.Path)
}

func (m *Manager) verifiedFile(name string) string {
	return filepath.Join(m.stateDir(), "verified", name)
}

// checkVerified returns an error matching ErrBaseUnusable when rec, the
// base recorded for lineage name, is not the snapshot of the lineage's
// last verified copy; nil when it is, or when no verified copy is
// recorded (a lineage kept before there were such records).
func (m *Manager) checkVerified(name string, rec Snapshot) error {
	b, err := os.ReadFile(m.verifiedFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var v Snapshot
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("lineage %s: %w: record %s is damaged: %v", name, ErrBaseUnusable, m.verifiedFile(name), err)
	}
	if v.Path == rec.Path && v.Created.Equal(rec.Created) {
		return nil
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	older := "is older than"
	if !rec.Created.Before(v.Created) {
		older = "is not the snapshot of"
	}
	return fmt.Errorf("lineage %s: %w: base %s (made %s) %s the last verified copy (of %s, made %s)",
		name, ErrBaseUnusable, rec.Path, stamp(rec.Created), older, v.Path, stamp(v.Created))
}

// CheckBase returns an error matching ErrBaseUnusable when path is the
// recorded base of a lineage but not the snapshot of that lineage's last
// verified copy (see checkVerified); nil for any other path.
func (m *Manager) CheckBase(path string) error {
	for p, name := range m.Bases() {
		if p != path && p != "/dev/"+path {
			continue
		}
		b, err := os.ReadFile(m.baseFile(name))
		if err != nil {
			return err
		}
		var rec Snapshot
		if err := json.Unmarshal(b, &rec); err != nil {
			return err
		}
		return m.checkVerified(name, rec)
	}
	return nil
}

// KeepBase makes s lineage name's base, then removes the previous base,
// if another. It is called once a copy made from s has been verified, and
// records that first (verified/NAME), then the base.
func (m *Manager) KeepBase(ctx context.Context, name string, s Snapshot) error {
	if err := CheckName(name); err != nil {
		return err
	}
	var prev Snapshot
	if b, err := os.ReadFile(m.baseFile(name)); err == nil {
		json.Unmarshal(b, &prev)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(m.verifiedFile(name), b); err != nil {
		return fmt.Errorf("record the verified copy of lineage %s: %w", name, err)
	}
	if err := atomicfile.WriteBytes(m.baseFile(name), b); err != nil {
		return fmt.Errorf("record base of lineage %s: %w", name, err)
	}
	if prev.Path != "" && prev.Path != s.Path {
		if err := m.Remove(ctx, prev.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lineage %s: remove the previous base: %w", name, err)
		}
	}
	return nil
}

// Bases returns the recorded bases: snapshot path → lineage name.
func (m *Manager) Bases() map[string]string {
	out := map[string]string{}
	dir := filepath.Join(m.stateDir(), "bases")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		var s Snapshot
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && json.Unmarshal(b, &s) == nil && s.Path != "" {
			out[s.Path] = e.Name()
		}
	}
	return out
}
