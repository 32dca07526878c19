package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/receive"
	"github.com/blkpipe/blkpipe/internal/snapshot"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/versions"
)

// keepFlag parses --keep N (N >= 1).
func keepFlag(n *int) func(string) error {
	return func(v string) error {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			return errors.New("want the number of versions to keep, 1 or more")
		}
		*n = k
		return nil
	}
}

// snapManager is the snapshot manager of --keep and --versions: the
// versions are snapctl's snapshots, with snapctl's state directory.
func snapManager(stderr io.Writer) *snapshot.Manager {
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	return &snapshot.Manager{StateDir: cli.SnapctlStateDir.Path(os.Getenv, isDir), Stderr: stderr}
}

// listVersions is blkwrite --versions DST.
func listVersions(target string, dir state.Dir, stdout, stderr io.Writer) error {
	if target == "" {
		return ddtool.Usage("--versions needs DST")
	}
	return versions.List(context.Background(), snapManager(stderr), dir, target, stdout)
}

// framedKeep applies a framed stream with opt, keeping the versions of
// the target (--keep N) around it when n > 0.
func framedKeep(ctx context.Context, n int, opt receive.Options, stderr io.Writer, apply func(receive.Options) error) error {
	if n == 0 {
		return apply(opt)
	}
	k := &versions.Keeper{N: n, Target: opt.Ops.Of, State: opt.State, Snap: snapManager(stderr),
		Stderr: stderr, Tool: "blkwrite"}
	if err := k.Before(ctx); err != nil {
		return err
	}
	var recErr error
	opt.Verified = func(alg, digest, streamID string, size int64) {
		recErr = k.Verified(alg, digest, streamID, size)
	}
	err := apply(opt)
	if err == nil && recErr != nil {
		fmt.Fprintf(stderr, "blkwrite: --keep: record the verified copy of %s: %v\n", opt.Ops.Of, recErr)
	}
	if kerr := k.After(ctx, err); err == nil {
		err = kerr
	}
	return err
}
