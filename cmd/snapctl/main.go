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
// (95), --extend, --grace D (10s).
//
// The state of btrfs and reflink snapshots is kept in $SNAPCTL_STATE_DIR
// (default /var/lib/snapctl).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM cancel ctx (unless ignored, as under nohup):
	// create, remove and gc finish what LVM is doing, undo a half-made
	// snapshot and exit 130. run handles the signals itself.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	code := exitCode(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// stopSignals returns the signals snapctl reacts to: SIGINT, SIGTERM and
// SIGHUP, less those it was started with ignored (nohup, a background job
// of a script), which stay ignored. Never none: Go catches SIGTERM even if
// inherited ignored.
func stopSignals() []os.Signal {
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}
