package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// Helpers shared by the LVM tests, which run in a QEMU guest: the host
// side makes the disks and checks what the guest wrote to them, the guest
// side (the same test function, qemutest.InGuest) drives LVM and snapctl.

const (
	blockSize = 4096
	dataSize  = 16 << 20 // origin volumes and their copies
	chunk     = 64 << 10 // what the writer writes at once
)

// pattern returns size bytes in which every 4 KiB block is distinct and
// tells which pattern (tag) and block it belongs to.
func pattern(tag byte, size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewChaCha8([32]byte{tag}))
	for off := 0; off < size; off += 8 {
		v := r.Uint64()
		for i := 0; i < 8; i++ {
			b[off+i] = byte(v >> (8 * i))
		}
	}
	for blk := 0; blk*blockSize < size; blk++ {
		copy(b[blk*blockSize:], fmt.Sprintf("%c%08d", tag, blk))
	}
	return b
}

// diskWith makes a sparse disk image of size bytes starting with data.
func diskWith(tb testing.TB, size int64, data []byte) string {
	tb.Helper()
	p := testutil.SparseFile(tb, size)
	if data != nil {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			tb.Fatal(err)
		}
		f.Close()
	}
	return p
}

func readDisk(tb testing.TB, path string, n int) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) < n {
		tb.Fatalf("%s: %d bytes, want %d", path, len(b), n)
	}
	return b[:n]
}

// checkPointInTime checks that snap is what the origin held at one moment
// while a writer replaced a with b front to back: blocks of b, then blocks
// of a, mixed only within one writer chunk. It returns how many blocks were
// already b.
func checkPointInTime(tb testing.TB, snap, a, b []byte) int {
	tb.Helper()
	n := len(a) / blockSize
	first := n // first block that is not b
	for i := 0; i < n; i++ {
		blk := snap[i*blockSize : (i+1)*blockSize]
		isA, isB := bytes.Equal(blk, a[i*blockSize:(i+1)*blockSize]), bytes.Equal(blk, b[i*blockSize:(i+1)*blockSize])
		if !isA && !isB {
			tb.Fatalf("block %d of the copy is neither the old nor the new data: %q…", i, blk[:16])
		}
		if !isB && first == n {
			first = i
		}
		// Past the chunk being written at the snapshot, all must be old.
		if isB && !isA && first < n && i >= (first/(chunk/blockSize)+1)*(chunk/blockSize) {
			tb.Fatalf("block %d is new data after old block %d: not one point in time", i, first)
		}
	}
	return first
}

// guest-side helpers

// sh runs a shell command in the guest and fails the test on error.
func sh(tb testing.TB, script string) string {
	tb.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// snapctlBin is the snapctl binary: copied into the guest as /bin/snapctl.
func snapctlBin(tb testing.TB) string {
	if qemutest.InGuest() {
		return "/bin/snapctl"
	}
	return testutil.Tool(tb, "snapctl")
}

// guestTools are the binaries the LVM tests need in the guest.
func guestTools(tb testing.TB) map[string]string {
	tb.Helper()
	return map[string]string{
		"/bin/snapctl":  snapctlBin(tb),
		"/bin/blkcat":   testutil.Tool(tb, "blkcat"),
		"/bin/blkwrite": testutil.Tool(tb, "blkwrite"),
	}
}

// writer replaces the content of dev with data, chunk by chunk, each write
// synchronous, pausing between chunks. After each chunk it reports how many
// are done on progress (non-blocking, so a slow reader loses nothing
// important). It returns the first error on done.
func writer(dev string, data []byte, pause time.Duration, progress chan<- int) <-chan error {
	return gatedWriter(dev, data, pause, progress, nil)
}

// gatedWriter is writer, calling before(i) ahead of chunk i when set.
func gatedWriter(dev string, data []byte, pause time.Duration, progress chan<- int, before func(i int)) <-chan error {
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DSYNC, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		for i := 0; i*chunk < len(data); i++ {
			if before != nil {
				before(i)
			}
			if _, err := f.WriteAt(data[i*chunk:(i+1)*chunk], int64(i*chunk)); err != nil {
				done <- fmt.Errorf("write %s at %d: %w", dev, i*chunk, err)
				return
			}
			if progress != nil {
				select {
				case progress <- i + 1:
				default:
				}
			}
			time.Sleep(pause)
		}
		done <- f.Close()
	}()
	return done
}

// snapGate keeps the writer from writing the last 16 chunks until a
// snapctl snapshot of vg/origin has been seen, or release is called (run
// has returned), so the snapshot is surely taken while the origin is being
// written, however slow the guest.
type snapGate struct {
	origin string
	chunks int
	open   atomic.Bool
}

func (g *snapGate) before(i int) {
	if i < g.chunks-16 {
		return
	}
	for !g.open.Load() {
		if m, _ := filepath.Glob("/dev/vg/" + g.origin + "_snapctl_*"); len(m) > 0 {
			g.open.Store(true)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *snapGate) release() { g.open.Store(true) }

// lvNames lists vg's logical volumes (hidden ones too).
func lvNames(tb testing.TB) string {
	tb.Helper()
	return strings.Join(strings.Fields(sh(tb, "lvs -a --noheadings -o lv_name vg")), " ")
}

// snapshotsLeft fails the test if snapctl list shows any snapshot.
func noSnapshotsLeft(tb testing.TB) {
	tb.Helper()
	if got := listPaths(tb, ""); len(got) != 0 {
		tb.Errorf("snapshots left behind: %v (lvs: %s)", got, lvNames(tb))
	}
}

// expect runs snapctl in-process and checks its exit status and that its
// stderr contains every one of msgs.
func expect(tb testing.TB, code int, msgs []string, args ...string) (stdout, stderr string) {
	tb.Helper()
	got, out, errOut := snapctl(tb, args...)
	if got != code {
		tb.Fatalf("snapctl %s: exit %d, want %d; stderr:\n%s", strings.Join(args, " "), got, code, errOut)
	}
	for _, m := range msgs {
		if !strings.Contains(errOut, m) {
			tb.Errorf("snapctl %s: stderr lacks %q:\n%s", strings.Join(args, " "), m, errOut)
		}
	}
	return out, errOut
}

// waitFile waits up to d for path to exist.
func waitFile(tb testing.TB, path string, d time.Duration) {
	tb.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	tb.Fatalf("%s did not appear within %v", path, d)
}

// waitFor waits up to d until stderr contains s.
func waitFor(tb testing.TB, s *testutil.SyncBuffer, want string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(s.String(), want) {
			return true
		}
	}
	tb.Errorf("stderr did not show %q within %v:\n%s", want, d, s.String())
	return false
}

// startSnapctl runs snapctl in-process in the background; wait returns
// its exit status.
func startSnapctl(args ...string) (stderr *testutil.SyncBuffer, wait func() int) {
	stderr = &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		var stdout bytes.Buffer
		done <- exitCode(run(context.Background(), args, strings.NewReader(""), &stdout, stderr), stderr)
	}()
	return stderr, func() int { return <-done }
}
