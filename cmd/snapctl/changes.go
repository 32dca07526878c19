package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blkpipe/blkpipe/internal/changes"
	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/snapshot"
)

// cmdChanges is `snapctl changes BASE SNAP`: the change list file on
// stdout, written whole or not at all.
// It says on stderr where the list came from and what it covers:
//
//	snapctl: changes: 12 ranges, 1441792 bytes, from thin_delta
func cmdChanges(ctx context.Context, m *snapshot.Manager, args []string, stdout, stderr io.Writer) error {
	operands, err := parse(args)
	if err != nil {
		return err
	}
	if len(operands) != 2 {
		return cli.Usagef("changes: want BASE SNAP, got %d arguments", len(operands))
	}
	// A lineage's base that is older than its last verified copy is no
	// base of the target's copy: a list from it would not apply there.
	if err := m.CheckBase(operands[0]); err != nil {
		return fmt.Errorf("changes %s %s: %w; not used: make a sums delta or a full copy", operands[0], operands[1], err)
	}
	l, how, err := m.Changes(ctx, operands[0], operands[1])
	if errors.Is(err, changes.ErrNoChangeList) {
		return fmt.Errorf("changes %s %s: %w; make a sums delta or a full copy", operands[0], operands[1], err)
	}
	if err != nil {
		return fmt.Errorf("changes %s %s: %w", operands[0], operands[1], err)
	}
	var b bytes.Buffer
	if err := changes.WriteList(&b, l); err != nil {
		return err
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "snapctl: changes: %d ranges, %d bytes, from %s\n", len(l), l.Bytes(), how)
	return nil
}
