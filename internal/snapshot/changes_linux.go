package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/changes"
)

// Changes returns the byte ranges of snap that may differ from base, two
// snapshots of one origin, base the older, from their metadata; how says
// where it came from ("extents", "thin_delta", "COW store"). The list is
// clipped to snap's size. Discarded thin blocks are listed too: they read
// as zeros now, and the reader sends them as such.
//
//   - two files (reflink clones, files in btrfs snapshots): their extents
//     (changes.Compare);
//   - two thin snapshots in one pool: thin_delta under the pool's
//     metadata snapshot, serialised by a lock file in the state directory
//     (changes.Thin);
//   - two classic snapshots of one origin: base's exception store, which
//     lists every origin chunk written since base was taken; snap must
//     have been taken before this call, so that the store covers it.
//
// Anything else, an overflowed classic snapshot, or extents without a
// trustworthy address give an error matching changes.ErrNoChangeList:
// the caller falls back to a sums delta or a full copy.
func (m *Manager) Changes(ctx context.Context, base, snap string) (l changes.List, how string, err error) {
	bi, err := os.Stat(base)
	if err != nil && !(os.IsNotExist(err) && isVGLV(base)) {
		return nil, "", fmt.Errorf("base %s: %w", base, err)
	}
	si, err := os.Stat(snap)
	if err != nil && !(os.IsNotExist(err) && isVGLV(snap)) {
		return nil, "", fmt.Errorf("snapshot %s: %w", snap, err)
	}
	if bi != nil && si != nil && bi.Mode().IsRegular() && si.Mode().IsRegular() {
		l, err := compareFiles(base, snap)
		return l, "extents", err
	}
	if bi != nil && bi.Mode().IsRegular() || si != nil && si.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%w: %s and %s are not both files or both logical volumes", changes.ErrNoChangeList, base, snap)
	}
	if err := needRoot(); err != nil {
		return nil, "", err
	}
	b, err := m.lvInfo(ctx, base)
	if err != nil {
		return nil, "", err
	}
	s, err := m.lvInfo(ctx, snap)
	if err != nil {
		return nil, "", err
	}
	// The device's size: lvs gives a classic snapshot's COW size.
	size, err := deviceSize(s.Path)
	if err != nil {
		return nil, "", err
	}
	switch {
	case b.VG != s.VG || b.Origin == "" || b.Origin != s.Origin:
		return nil, "", fmt.Errorf("%w: %s/%s and %s/%s are not snapshots of one origin", changes.ErrNoChangeList, b.VG, b.Name, s.VG, s.Name)
	case b.Segtype == "thin" && s.Segtype == "thin" && b.Pool == s.Pool:
		l, err := m.thinChanges(ctx, b, s)
		if err != nil {
			return nil, "", err
		}
		return l.Align(1, size), "thin_delta", nil
	case b.Segtype != "thin" && s.Segtype != "thin":
		if b.invalid() {
			return nil, "", fmt.Errorf("%w: snapshot %s/%s is invalid (it overflowed)", changes.ErrNoChangeList, b.VG, b.Name)
		}
		c, err := changes.ReadCOW("/dev/mapper/" + dmName(b.VG, b.Name) + "-cow")
		if err != nil {
			return nil, "", err
		}
		return c.Changed.Align(1, size), "COW store", nil
	}
	return nil, "", fmt.Errorf("%w: %s/%s (%s) and %s/%s (%s) are different kinds of snapshot", changes.ErrNoChangeList, b.VG, b.Name, b.Segtype, s.VG, s.Name, s.Segtype)
}

func compareFiles(base, snap string) (changes.List, error) {
	bf, err := os.Open(base)
	if err != nil {
		return nil, err
	}
	defer bf.Close()
	sf, err := os.Open(snap)
	if err != nil {
		return nil, err
	}
	defer sf.Close()
	return changes.Compare(bf, sf)
}

// thinChanges runs thin_delta between two thin snapshots of one pool.
func (m *Manager) thinChanges(ctx context.Context, b, s lv) (changes.List, error) {
	out, err := command(ctx, "lvs", "--noheadings", "-o", "thin_id", b.VG+"/"+b.Name, s.VG+"/"+s.Name)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(string(out))
	if len(ids) != 2 {
		return nil, fmt.Errorf("lvs thin_id of %s/%s and %s/%s: %q", b.VG, b.Name, s.VG, s.Name, out)
	}
	older, err1 := strconv.ParseUint(ids[0], 10, 64)
	newer, err2 := strconv.ParseUint(ids[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("lvs thin_id of %s/%s and %s/%s: %q", b.VG, b.Name, s.VG, s.Name, out)
	}
	pool := dmName(b.VG, b.Pool)
	if err := os.MkdirAll(m.stateDir(), 0o700); err != nil {
		return nil, err
	}
	th := &changes.Thin{Pool: pool + "-tpool", Metadata: "/dev/mapper/" + pool + "_tmeta",
		Lock: filepath.Join(m.stateDir(), "thin-"+pool+".lock"), ThinDelta: m.ThinDelta}
	td, err := th.Delta(ctx, older, newer)
	if err != nil {
		return nil, err
	}
	all := append(append([]changes.Range(nil), td.Changed...), td.Discarded...)
	return changes.Normalize(all), nil
}

// dmName is device-mapper's name of the LV lv in vg: each '-' doubled,
// the two joined by '-'.
func dmName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

// deviceSize is the size of the block device at path (BLKGETSIZE64).
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return blockdev.Size(f)
}
