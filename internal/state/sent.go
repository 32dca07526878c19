package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The sender's side of a changed-block copy (blkcat --changed-from) keeps,
// for the snapshot it last sent, what that snapshot holds: a record in
// the Copy format (identity, size, BLAKE3 root) and beside it the leaf
// map (".b3map") and the 4 KiB block sums (".sums", the block-sums
// stream format) of its bytes. The next run, whose base that snapshot
// is, rehashes only the leaves that changed and sends only the 4 KiB
// blocks whose sums differ. The files are named after the snapshot's
// path, with the extension ".sent".

// SentPath is the sent record of src, a snapshot blkcat sent from.
func (d Dir) SentPath(src string) string { return d.file(src, ".sent") }

// SentMapPath is where the leaf map of src's sent record is kept.
func (d Dir) SentMapPath(src string) string { return d.SentPath(src) + ".b3map" }

// SentSumsPath is where the 4 KiB block sums of src's sent record are
// kept.
func (d Dir) SentSumsPath(src string) string { return d.SentPath(src) + ".sums" }

// LoadSent reads src's sent record: os.ErrNotExist when there is none,
// ErrDamaged (naming the file) when it cannot be trusted.
func (d Dir) LoadSent(src string) (Copy, error) {
	return loadCopy(d.SentPath(src), "sent record")
}

// SaveSent replaces c.Target's sent record, sums and map, written in
// that order by writeSums and writeMap (so writeMap may use what
// writeSums computed, and fill in c's digest): the record is removed
// first and written last, so a crash between leaves no record vouching
// for another snapshot's map or sums.
func (d Dir) SaveSent(c *Copy, writeMap, writeSums func(io.Writer) error) error {
	if err := d.RemoveSent(c.Target); err != nil {
		return err
	}
	if err := d.replaceWith(d.SentSumsPath(c.Target), writeSums); err != nil {
		return fmt.Errorf("save block sums of %s: %w", c.Target, err)
	}
	if err := d.replaceWith(d.SentMapPath(c.Target), writeMap); err != nil {
		return fmt.Errorf("save leaf map of %s: %w", c.Target, err)
	}
	return d.replace(d.SentPath(c.Target), c.marshal())
}

// RemoveSent removes src's sent record, map and sums; there being none is
// no error.
func (d Dir) RemoveSent(src string) error {
	return remove(d.SentPath(src), d.SentMapPath(src), d.SentSumsPath(src))
}

// PruneSent removes the sent records, maps and sums of snapshots that no
// longer exist (a lineage's old bases, removed once a newer copy
// verified), so that they do not pile up night after night. Damaged
// records are left for a person to look at.
func (d Dir) PruneSent() error {
	paths, err := filepath.Glob(filepath.Join(d.dir(), "*.sent"))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		c, err := loadCopy(p, "sent record")
		if err != nil || c.Target == "" || d.SentPath(c.Target) != p {
			continue
		}
		if _, err := os.Stat(c.Target); errors.Is(err, os.ErrNotExist) {
			errs = append(errs, d.RemoveSent(c.Target))
		}
	}
	return errors.Join(errs...)
}
