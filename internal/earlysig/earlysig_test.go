package earlysig

import (
	"syscall"
	"testing"
	"time"
)

func TestUSR1Queued(t *testing.T) {
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-USR1():
		if s != syscall.SIGUSR1 {
			t.Fatalf("got %v, want SIGUSR1", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGUSR1 was not delivered to USR1() within 10 s")
	}
}
