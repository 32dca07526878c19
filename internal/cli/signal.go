package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
)

// ErrInterrupted matches the cause of a context that SignalContext
// cancelled: errors.Is(context.Cause(ctx), cli.ErrInterrupted). Tools exit
// ExitInterrupted for it.
var ErrInterrupted = errors.New("interrupted")

// Interrupt is the cause of a context cancelled by a signal.
type Interrupt struct{ Signal os.Signal }

func (e *Interrupt) Error() string { return "interrupted by " + e.Signal.String() }

// Is reports ErrInterrupted as matching.
func (e *Interrupt) Is(target error) bool { return target == ErrInterrupted }

// Catchable returns sigs less those the process was started with ignored
// (nohup, a background job of a script): as dd leaves a SIG_IGN alone,
// those stay ignored, for the tool and the commands it starts.
func Catchable(sigs ...os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// SignalContext returns a copy of parent that the first of sigs to arrive
// cancels, with an *Interrupt as its cause (Caught returns the signal).
// Signals in Catchable's sense ignored stay ignored; when none is left
// the context is cancelled only by stop or parent. Later signals are
// swallowed until stop, which restores their default action; call it
// when main no longer needs the context. Unlike signal.NotifyContext,
// it never catches every signal when sigs are all ignored.
func SignalContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs = Catchable(sigs...)
	if len(sigs) == 0 {
		return ctx, func() { cancel(nil) }
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(&Interrupt{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// Caught returns the signal that cancelled ctx (made by SignalContext),
// or nil if none did.
func Caught(ctx context.Context) os.Signal {
	var in *Interrupt
	if errors.As(context.Cause(ctx), &in) {
		return in.Signal
	}
	return nil
}
