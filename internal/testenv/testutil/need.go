package testutil

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NeedAIO skips (or fails, in CI) unless the kernel gives native AIO
// (io_setup), without which blkcat quietly reads with pread and a test
// comparing its AIO path with pread would compare pread with pread.
func NeedAIO(tb testing.TB) {
	tb.Helper()
	if err := probeAIO(); err != nil {
		Skip(tb, fmt.Sprintf("needs native AIO: %v", err))
	}
}

// probeAIO returns the error io_setup gives, or nil if native AIO works.
func probeAIO() error {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return fmt.Errorf("io_setup: %w", e)
	}
	unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
	return nil
}

// NeedArch skips (or fails, in CI) unless the tests run on arch (GOARCH),
// for tests that read architecture-specific numbers such as system call
// numbers in /proc/PID/task/*/syscall.
func NeedArch(tb testing.TB, arch, why string) {
	tb.Helper()
	if runtime.GOARCH != arch {
		Skip(tb, fmt.Sprintf("needs %s (%s), this is %s", arch, why, runtime.GOARCH))
	}
}

// NeedLong skips (or fails, in CI) under go test -short; what says what
// the test does that -short leaves out ("moves 512 MiB").
func NeedLong(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		Skip(tb, "-short: "+what)
	}
}

// Missing records that t covers less than it would because of reason (pv
// not installed, so pvcat is compared with nothing): it runs a subtest
// called name that skips with reason, or fails in CI, so a run's list of
// skips shows the coverage that shrank instead of a quiet pass.
func Missing(t *testing.T, name, reason string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Helper()
		Skip(t, reason)
	})
}
