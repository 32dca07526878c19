package snapshot

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
)

// WatchOptions tune Watch. Zero values take the defaults.
type WatchOptions struct {
	// Interval between polls; default 2 s.
	Interval time.Duration
	// Warn is the fill percentage at which Watch says so on Stderr;
	// default 80.
	Warn float64
	// MaxFill is the fill percentage at which Watch gives up with
	// ErrFilled; default 95.
	MaxFill float64
	// Extend grows the snapshot (a thin snapshot: its pool) with lvextend
	// when it reaches Warn, as long as the volume group has room.
	Extend bool
	// Stderr receives the warnings; default the Manager's.
	Stderr io.Writer
}

func (o WatchOptions) withDefaults(m *Manager) WatchOptions {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Warn <= 0 {
		o.Warn = 80
	}
	if o.MaxFill <= 0 {
		o.MaxFill = 95
	}
	if o.Stderr == nil {
		o.Stderr = m.stderr()
	}
	return o
}

// Watch polls the fill of an LVM snapshot (COW: its own space and
// lv_snapshot_invalid; thin: the pool's data or metadata) until ctx is done, when it
// returns nil. It returns an error wrapping ErrInvalid as soon as the
// snapshot is invalid, and one wrapping ErrFilled once the fill reaches
// MaxFill (after growing it, with Extend, is no longer possible). btrfs and
// reflink snapshots cannot fill up: Watch just waits for ctx.
func (m *Manager) Watch(ctx context.Context, s Snapshot, o WatchOptions) error {
	o = o.withDefaults(m)
	if s.Backend != LVM && s.Backend != LVMThin {
		<-ctx.Done()
		return nil
	}
	what := "snapshot " + s.VG + "/" + s.LV
	if s.Backend == LVMThin {
		what = "thin pool " + s.VG + "/" + s.Pool + " of snapshot " + s.VG + "/" + s.LV
	}
	warned, full := false, false
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		st, err := m.Status(ctx, s)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// One failed poll (lvm locked by another command) is not
			// a reason to stop the copy; say so and poll again.
			fmt.Fprintf(o.Stderr, "snapctl: warning: cannot read the fill of %s: %v\n", what, err)
		} else {
			if st.Invalid {
				return fmt.Errorf("%s: %w", what, ErrInvalid)
			}
			if st.Fill >= o.Warn && o.Extend && !full {
				add, err := m.extend(ctx, st)
				if ctx.Err() != nil {
					return nil
				}
				switch {
				case err != nil:
					fmt.Fprintf(o.Stderr, "snapctl: warning: %s is %.1f%% full and could not be grown: %v\n", what, st.Fill, err)
				case add == 0:
					full = true
					fmt.Fprintf(o.Stderr, "snapctl: warning: %s is %.1f%% full; volume group %s has no room left to grow it\n", what, st.Fill, s.VG)
				default:
					fmt.Fprintf(o.Stderr, "snapctl: %s was %.1f%% full: grew it by %s\n", what, st.Fill, humanize.IBytes(add))
					warned = false
					continue
				}
			}
			if st.Fill >= o.MaxFill {
				return fmt.Errorf("%s is %.1f%% full (--max-fill %g%%): %w", what, st.Fill, o.MaxFill, ErrFilled)
			}
			if st.Fill >= o.Warn && !warned {
				warned = true
				fmt.Fprintf(o.Stderr, "snapctl: warning: %s is %.1f%% full (--warn %g%%); at %g%% the command is stopped\n", what, st.Fill, o.Warn, o.MaxFill)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
