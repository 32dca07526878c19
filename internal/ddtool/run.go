package ddtool

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/earlysig"
	"github.com/blkpipe/blkpipe/internal/pipeio"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// Notify sets up the signals a dd tool handles itself, first thing in its
// run: SIGPIPE is ignored when it was ignored at start, and SIGUSR1 is
// delivered on the returned channel (each prints dd's report). That
// channel is earlysig's, caught since package initialisation.
func Notify() <-chan os.Signal {
	if pipeio.SigpipeInherited() {
		// Started with SIGPIPE ignored, as dd would be: a write to a
		// closed standard output then fails with EPIPE, reported as dd
		// reports it, instead of Go's runtime killing the tool silently.
		signal.Ignore(syscall.SIGPIPE)
	}
	return earlysig.USR1()
}

// Begin starts a copy's run: a context that SIGINT or SIGTERM cancels,
// and dd's report for the tool name at the level status= asks for, with
// the operands' warnings printed. end, deferred with the run's error,
// restores the signals and marks an interrupted error with its signal
// (for Exit).
func Begin(name string, ops *ddargs.Operands, stderr io.Writer) (ctx context.Context, rep *progress.DD, end func(*error)) {
	ctx, stop := cli.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	end = func(err *error) {
		stop()
		if errors.Is(*err, ErrInterrupted) {
			if s := cli.Caught(ctx); s != nil {
				*err = &interruptedError{sig: s, err: *err}
			}
		}
	}
	level := map[ddargs.Status]progress.Level{
		ddargs.StatusDefault:  progress.LevelDefault,
		ddargs.StatusNone:     progress.LevelNone,
		ddargs.StatusNoxfer:   progress.LevelNoxfer,
		ddargs.StatusProgress: progress.LevelProgress,
	}[ops.Status]
	rep = progress.NewDD(stderr, name, level)
	for _, w := range ops.Warnings {
		rep.Diagnose(w)
	}
	return ctx, rep, end
}

// Copy runs c until it ends or ctx is cancelled, printing dd's report on
// SIGUSR1 and at the end. dd's clock starts at start (now if zero). finish,
// if set, is a sender's: it gets the copy's error and returns the tool's.
// An output other than stdout is closed, its error counted. An error is
// returned already printed (Reported), except ErrInterrupted.
func Copy(ctx context.Context, c *ddcopy.Copier, stdout *os.File, usr1 <-chan os.Signal, start time.Time, finish func(error) error) error {
	rep := c.R
	defer ReportOnSignal(rep, usr1)()

	if start.IsZero() {
		start = time.Now()
	}
	rep.Restart(start)
	rep.ScheduleFrom(processStart) // ddhabits.go
	result := make(chan error, 1)
	go func() {
		if finish != nil {
			// The copy's writer goroutine feeds the sender, whose SHA-256
			// (or block digests) is the one serial stage: it runs faster
			// on a thread of its own that no other goroutine shares.
			runtime.LockOSThread()
		}
		err := c.Run(ctx)
		if finish != nil {
			err = finish(err)
		}
		result <- err
	}()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = ErrInterrupted
	}
	if err != nil && err != ErrInterrupted {
		rep.Diagnose(err.Error())
		err = &errReported{err}
	}
	if err == nil && c.Out.F != stdout {
		if cerr := c.Out.F.Close(); cerr != nil {
			err = &ddmsg.Error{Msg: "closing output file " + ddmsg.Quote(c.Out.Name), Err: cerr}
			rep.Diagnose(err.Error())
			err = &errReported{err}
		}
	}
	rep.Report(time.Now())
	return err
}

// OutputName is how messages name the target: of=, or standard output.
func OutputName(ops *ddargs.Operands) string {
	if ops.Of == "" {
		return "standard output"
	}
	return ops.Of
}

// Interruptible runs f, which reads the input before anything is written,
// and returns its error, or ErrInterrupted as soon as SIGINT or SIGTERM
// cancels ctx: a receiver waiting for its first bytes from a stalled
// sender must stop when told to, as dd does, and not only once the input
// ends. f is then left blocked in its read; nothing uses the input after.
func Interruptible(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ErrInterrupted
	}
}

// ReportOnSignal prints dd's report on every SIGUSR1 until the returned
// function is called.
func ReportOnSignal(rep *progress.DD, usr1 <-chan os.Signal) func() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-usr1:
				rep.Report(time.Now())
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// interruptedError is ErrInterrupted with the signal that caused it.
type interruptedError struct {
	sig os.Signal
	err error
}

func (e *interruptedError) Error() string { return e.err.Error() }
func (e *interruptedError) Unwrap() error { return e.err }

// interruptSignal returns the signal that interrupted the run err ended,
// or nil.
func interruptSignal(err error) os.Signal {
	var ie *interruptedError
	if errors.As(err, &ie) {
		return ie.sig
	}
	return nil
}
