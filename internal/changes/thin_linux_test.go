package changes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeThin returns a Thin whose dmsetup and thin_delta are shell scripts
// that log their arguments; thinDelta is the body of the fake thin_delta
// and reserveRC, releaseRC the exit codes of the two messages.
func fakeThin(t *testing.T, thinDelta string, reserveRC, releaseRC int) (*Thin, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dm := write("dmsetup", fmt.Sprintf(`if [ "$1" = status ]; then
	echo "0 131072 thin-pool 1 11/1024 0/512 ${FAKE_HELD:--} rw discard_passdown queue_if_no_space - 1024"
	exit 0
fi
echo "dmsetup $*" >>%[1]s
case "$4" in
reserve_metadata_snap) rc=%[2]d ;;
release_metadata_snap) rc=%[3]d ;;
*) rc=9 ;;
esac
[ $rc = 0 ] || echo "device-mapper: message ioctl on $2 failed: Device or resource busy" >&2
exit $rc
`, log, reserveRC, releaseRC))
	td := write("thin_delta", fmt.Sprintf("echo \"thin_delta $*\" >>%s\n%s", log, thinDelta))
	return &Thin{Pool: "vg0-pool-tpool", Metadata: "/dev/mapper/vg0-pool_tmeta",
		Lock: filepath.Join(dir, "lock"), ThinDelta: td, Dmsetup: dm}, log
}

func readLog(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

var (
	logReserve = "dmsetup message vg0-pool-tpool 0 reserve_metadata_snap"
	logRelease = "dmsetup message vg0-pool-tpool 0 release_metadata_snap"
	logDelta   = "thin_delta -m --snap1 1 --snap2 2 /dev/mapper/vg0-pool_tmeta"
)

func TestThinDelta(t *testing.T) {
	out := thinHead + `<different begin="16" length="1"/><left_only begin="17" length="1"/>` + thinTail
	for _, tc := range []struct {
		name                 string
		script               string
		reserveRC, releaseRC int
		wantErr              string
		wantLog              []string
	}{
		{"ok", "cat <<'EOF'\n" + out + "EOF\n", 0, 0, "", []string{logReserve, logDelta, logRelease}},
		{"thin_delta fails", "echo '<superblock data_block_size=\"128\">'\necho 'Unable to find mapping tree for snap1 (1)' >&2\nexit 1\n",
			0, 0, "exit status 1: Unable to find mapping tree for snap1 (1)", []string{logReserve, logDelta, logRelease}},
		{"garbage output", "echo '<nonsense/>'\nexec sleep 1000\n",
			0, 0, "unexpected element <nonsense>", []string{logReserve, logDelta, logRelease}},
		{"empty output", "exit 0\n", 0, 0, "truncated", []string{logReserve, logDelta, logRelease}},
		{"wrong devices", "cat <<'EOF'\n" + strings.Replace(out, `right="2"`, `right="3"`, 1) + "EOF\n",
			0, 0, "compared thin devices 1 and 3, not 1 and 2", []string{logReserve, logDelta, logRelease}},
		{"reserve fails", "exit 0\n", 1, 0, "reserve_metadata_snap: exit status 1: device-mapper: message ioctl",
			[]string{logReserve}},
		{"release fails", "cat <<'EOF'\n" + out + "EOF\n", 0, 1, "release_metadata_snap: exit status 1",
			[]string{logReserve, logDelta, logRelease}},
		{"reserve fails, one held", "exit 0\n", 1, 0, "reserve_metadata_snap: exit status 1: device-mapper: message ioctl on vg0-pool-tpool failed: Device or resource busy; " +
			"thin pool vg0-pool-tpool already holds a metadata snapshot (at block 42): a thin_delta or thin_dump outside snapctl uses it, or the run that reserved it was killed; " +
			"if none runs, release it with dmsetup message vg0-pool-tpool 0 release_metadata_snap", []string{logReserve}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasSuffix(tc.name, "one held") {
				t.Setenv("FAKE_HELD", "42")
			}
			th, log := fakeThin(t, tc.script, tc.reserveRC, tc.releaseRC)
			td, err := th.Delta(context.Background(), 1, 2)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Delta: %v", err)
				}
				if !slices.Equal(td.Changed, List{{16 << 16, 1 << 16}}) || !slices.Equal(td.Discarded, List{{17 << 16, 1 << 16}}) {
					t.Errorf("Delta = %+v", td)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) || td != nil {
				t.Fatalf("Delta = %+v, %v; want an error containing %q", td, err, tc.wantErr)
			}
			if got := readLog(t, log); !slices.Equal(got, tc.wantLog) {
				t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantLog, "\n"))
			}
		})
	}
}

// TestThinDeltaCancel cancels the context (as SIGINT would) while
// thin_delta runs: it is killed and the metadata snapshot still released.
func TestThinDeltaCancel(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "started")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	th, log := fakeThin(t, fmt.Sprintf("echo started >%s\nexec sleep 1000\n", fifo), 0, 0)
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := th.Delta(ctx, 1, 2)
		errc <- err
	}()
	// Opening the FIFO blocks until thin_delta opens it to write.
	if _, err := os.ReadFile(fifo); err != nil {
		t.Fatal(err)
	}
	interrupted := errors.New("interrupted")
	cancel(interrupted)
	select {
	case err := <-errc:
		if !errors.Is(err, interrupted) {
			t.Fatalf("Delta after cancel: %v, want the context's cause", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Delta did not return within 30 s of the cancel")
	}
	if got, want := readLog(t, log), []string{logReserve, logDelta, logRelease}; !slices.Equal(got, want) {
		t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestThinDeltaLock holds the lock file: Delta waits for it and gives up
// when its context ends, before touching the pool; once the lock is
// free it runs.
func TestThinDeltaLock(t *testing.T) {
	th, log := fakeThin(t, "cat <<'EOF'\n"+thinHead+thinTail+"EOF\n", 0, 0)
	unlock, err := lockFile(context.Background(), th.Lock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := th.Delta(ctx, 1, 2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for lock") {
		t.Fatalf("Delta with the lock held: %v, want a deadline waiting for the lock", err)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Fatalf("Delta ran commands without the lock: %q", readLog(t, log))
	}
	unlock()
	if _, err := th.Delta(context.Background(), 1, 2); err != nil {
		t.Fatalf("Delta with the lock free: %v", err)
	}
	if _, err := (&Thin{}).Delta(context.Background(), 1, 2); err == nil || !strings.Contains(err.Error(), "no lock file") {
		t.Fatalf("Delta without a lock file: %v", err)
	}
}

func TestThinRelease(t *testing.T) {
	th, log := fakeThin(t, "exit 0\n", 0, 0)
	if err := th.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); !slices.Equal(got, []string{logRelease}) {
		t.Fatalf("commands run: %q", got)
	}
}
