package receive

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestIdle: a reader that is not read from (blkwrite busy, the sender
// held back) is not idle; a read that waits for input longer than the
// timeout ends the context with ErrIdle.
func TestIdle(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	const d = 20 * time.Millisecond
	ctx, w := WatchIdle(context.Background(), pr, d, "'t'")
	defer w.Stop()
	w.Reset(pr)
	go pw.Write([]byte("x"))
	if _, err := w.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		t.Fatalf("idle while nothing read: %v", context.Cause(ctx))
	case <-time.After(10 * d):
	}
	go w.Read(make([]byte, 1)) // waits: the sender is gone
	select {
	case <-ctx.Done():
		if c := IdleCause(ctx); !errors.Is(c, ErrIdle) {
			t.Fatalf("cause %v", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a read waiting for input was not ended")
	}
}
