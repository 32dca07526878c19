// Snapctl makes, watches and removes the point-in-time snapshots that a
// copy of a live volume or image reads from, so the copy reads one frozen
// moment and no snapshot is ever left behind.
//
// Synopsis:
//
//	snapctl create [options] ORIGIN        print the snapshot's path
//	snapctl list [--backend B] [--json]    snapshots made by snapctl
//	snapctl remove [--timeout D] SNAP...
//	snapctl run [options] ORIGIN -- CMD [ARG...]
//	snapctl gc --older-than D [--backend B]
//	snapctl -h|--help | -V|--version
//
// ORIGIN is an LVM logical volume (/dev/vg/lv or vg/lv), or a file or
// directory on btrfs, or an image file on XFS/btrfs (reflink). run creates
// a snapshot, runs CMD with $SNAP (and {} in its arguments) set to the
// snapshot's path, and removes the snapshot however CMD ends.
//
// Options of create and run:
//
//	--backend B    lvm, lvm-thin, btrfs or reflink (default: from ORIGIN)
//	--size S       COW snapshot size: 100%FREE (default), N%ORIGIN, N%, 512M…
//	--name N       snapshot name (default ORIGIN_snapctl_TIME)
//	--dir D        btrfs/reflink: where the snapshot goes (default .snapctl
//	               at the root of ORIGIN's filesystem)
//	--freeze MP    freeze the filesystem at MP for the instant of the snapshot
//	--pre CMD      sh -c CMD before the snapshot (e.g. pause a service)
//	--post CMD     sh -c CMD after it, always, even on failure
//
// Options of run only: --interval D (2s), --warn PCT (80), --max-fill PCT
// (95), --extend, --grace D (10s). D is seconds (2, 0.5) or a duration
// (250ms, 5m, 1h30m, 1d, 1d12h).
//
// The state of btrfs and reflink snapshots is kept in
// $BLKPIPE_STATE_DIR/snapctl, else $SNAPCTL_STATE_DIR, else
// /var/lib/snapctl if it exists (an install from before), else
// /var/lib/blkpipe/snapctl.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/blkpipe/blkpipe/internal/cli"
)

// stopSignals are the signals snapctl reacts to, less those it was started
// with ignored (nohup, a background job of a script), which stay ignored.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

func main() {
	// The stop signals cancel ctx: create, remove and gc finish what LVM
	// is doing, undo a half-made snapshot and exit 130. run handles the
	// signals itself.
	ctx, stop := cli.SignalContext(context.Background(), stopSignals...)
	code := exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}
