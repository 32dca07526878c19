package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

func TestSignalContext(t *testing.T) {
	ctx, stop := SignalContext(context.Background(), syscall.SIGUSR2)
	defer stop()
	if Caught(ctx) != nil {
		t.Fatal("caught a signal before any was sent")
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR2)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGUSR2 did not cancel the context")
	}
	if s := Caught(ctx); s != syscall.SIGUSR2 || !errors.Is(context.Cause(ctx), ErrInterrupted) {
		t.Errorf("Caught = %v, cause %v; want SIGUSR2, ErrInterrupted", s, context.Cause(ctx))
	}

	ctx2, stop2 := SignalContext(context.Background(), syscall.SIGUSR2)
	stop2()
	if Caught(ctx2) != nil || ctx2.Err() == nil {
		t.Errorf("after stop: Caught %v, Err %v; want nil and cancelled", Caught(ctx2), ctx2.Err())
	}
}

// TestSignalIgnored: a signal ignored at start (nohup) stays ignored, and
// a context with nothing left to catch does not catch every signal, as
// signal.NotifyContext would.
func TestSignalIgnored(t *testing.T) {
	if os.Getenv("CLI_TEST_CHILD") == "ignored" {
		ctx, stop := SignalContext(context.Background(), syscall.SIGHUP)
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		// SIGTERM was not asked for: Go's default action kills us.
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case <-ctx.Done():
			os.Exit(3)
		case <-time.After(10 * time.Second):
			os.Exit(4)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalIgnored$")
	cmd.Env = append(os.Environ(), "CLI_TEST_CHILD=ignored")
	signal.Ignore(syscall.SIGHUP) // inherited by the child as SIG_IGN
	err := cmd.Run()
	signal.Reset(syscall.SIGHUP)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child: %v; want it killed by SIGTERM, with SIGHUP ignored", err)
	}
	if len(Catchable(syscall.SIGINT, syscall.SIGTERM)) != 2 {
		t.Errorf("Catchable drops signals that are not ignored")
	}
}

// TestRaise: the process dies of the signal, without a sleep after it.
func TestRaise(t *testing.T) {
	if os.Getenv("CLI_TEST_CHILD") == "raise" {
		ctx, stop := SignalContext(context.Background(), syscall.SIGINT)
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-ctx.Done()
		Raise(syscall.SIGINT)
		os.Exit(5)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRaise$")
	cmd.Env = append(os.Environ(), "CLI_TEST_CHILD=raise")
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("child: %v; want it killed by SIGINT", err)
	}
}
