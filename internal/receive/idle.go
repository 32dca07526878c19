package receive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is blkwrite's --idle-timeout under --allow: an
// orphaned blkwrite (the sending host died without closing the
// connection) would otherwise hold its target's lock until sshd's
// keepalive gives up, about two hours by default.
const DefaultIdleTimeout = 5 * time.Minute

// ErrIdle is the cause of a copy ended by --idle-timeout: no byte of
// input arrived for that long.
var ErrIdle = errors.New("no input")

// Idle watches a reader for input: WatchIdle returns a context that is
// cancelled, with a cause wrapping ErrIdle, once a read has waited d for
// input. Only waiting counts: while blkwrite is busy (writing, or reading
// a delta's gaps back from its target) and reads nothing, the sender is
// held back by the pipe, not idle. Stop ends the watch.
type Idle struct {
	r io.Reader
	// waiting is the UnixNano since which a read has waited for input,
	// 0 when none waits.
	waiting atomic.Int64
	stop    chan struct{}
}

// WatchIdle starts watching r for d (d ≤ 0: not at all), for writing
// target (named so in the message). Until Reset, the caller is taken to
// be waiting for r's first byte; reads must then go through the returned
// Idle.
func WatchIdle(ctx context.Context, r io.Reader, d time.Duration, target string) (context.Context, *Idle) {
	w := &Idle{r: r, stop: make(chan struct{})}
	w.waiting.Store(time.Now().UnixNano())
	if d <= 0 {
		return ctx, w
	}
	ctx, cancel := context.WithCancelCause(ctx)
	tick := max(d/20, time.Millisecond)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if since := w.waiting.Load(); since != 0 && now.Sub(time.Unix(0, since)) >= d {
					cancel(fmt.Errorf("%w for %v (--idle-timeout): did the sending host die? giving up and releasing %s", ErrIdle, d, target))
					return
				}
			}
		}
	}()
	return ctx, w
}

// Reset points the watch at r, the reader to read from now on: the
// first byte has arrived and nothing waits.
func (w *Idle) Reset(r io.Reader) {
	w.r = r
	w.waiting.Store(0)
}

// Read reads from the watched reader, noting how long it waits.
func (w *Idle) Read(p []byte) (int, error) {
	w.waiting.Store(time.Now().UnixNano())
	n, err := w.r.Read(p)
	w.waiting.Store(0)
	return n, err
}

// Stop ends the watch. It may be called more than once.
func (w *Idle) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}

// IdleCause returns the cause of ctx's end if it was --idle-timeout.
func IdleCause(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, ErrIdle) {
		return c
	}
	return nil
}
