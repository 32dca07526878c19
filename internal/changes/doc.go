// Package changes lists the byte ranges of a volume that changed between two
// snapshots, from snapshot metadata.
//
// Each source answers the same question, "which bytes of the newer copy may
// differ from the older one?", and returns a List: sorted, non-overlapping
// byte ranges, a superset of what changed. The sources are
//
//   - Compare: FIEMAP of two reflink clones or two btrfs snapshots of an
//     image file (XFS with reflink=1, btrfs);
//   - ParseThinDelta and Thin.Delta: thin_delta(8) between two LVM thin
//     snapshots, under a reserved pool metadata snapshot;
//   - ParseCOW and ReadCOW: the exception store of a classic (dm-snapshot)
//     LVM snapshot, which lists the origin chunks written since it was taken.
//
// None of them guesses. When the metadata cannot vouch for a range (no
// FIEMAP, extents without a meaningful address, an overflowed snapshot) the
// error matches ErrNoChangeList and the caller copies everything instead.
package changes

import "errors"

// ErrNoChangeList is returned (wrapped) when the metadata cannot give a
// trustworthy change list: the filesystem has no FIEMAP, an extent's
// address is meaningless (unknown, inline, tail-packed or unaligned), or a
// classic snapshot overflowed. The caller should fall back to a full copy.
var ErrNoChangeList = errors.New("no change list")
