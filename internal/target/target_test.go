package target

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

func TestOpenLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	spec := Spec{Path: path, Create: true, ReadBack: true, Guard: true, Lock: true}
	first, err := Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer first.F.Close()
	if _, err := Open(spec); err == nil || !strings.Contains(err.Error(), "being written by another blkwrite") {
		t.Fatalf("second Open: %v, want the flock refusal", err)
	}
	first.F.Close()
	again, err := Open(spec)
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	again.F.Close()
}

func TestOpenMissingNoCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing")
	_, err := Open(Spec{Path: path, Guard: true})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "failed to open '"+path+"'") {
		t.Fatalf("Open: %v, want dd's \"failed to open\" with ENOENT", err)
	}
}

// TestWriteDirectOff: an unaligned write turns O_DIRECT off for good, and
// makes the target fsync at the end only when the user asked for O_DIRECT;
// an aligned one keeps it.
func TestWriteDirectOff(t *testing.T) {
	for _, user := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "out")
		tg, err := Open(Spec{Path: path, Create: true, Direct: true, UserDirect: user})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.F.Close()
		if !tg.Direct {
			testutil.Skip(t, "the file system of t.TempDir() has no O_DIRECT")
		}
		d := tg.DirectUnit()
		if _, err := tg.Write(blockdev.AlignedBuffer(d, d)); err != nil {
			t.Fatal(err)
		}
		if !tg.Direct {
			t.Fatalf("user=%v: O_DIRECT went off for an aligned write", user)
		}
		if _, err := tg.WriteAt([]byte("tail"), int64(d)); err != nil {
			t.Fatal(err)
		}
		if on, _ := blockdev.IsDirect(tg.F); tg.Direct || on {
			t.Errorf("user=%v: O_DIRECT still on after an unaligned write", user)
		}
		if tg.Fsync != user {
			t.Errorf("user=%v: Fsync = %v", user, tg.Fsync)
		}
		got, _ := os.ReadFile(path)
		if len(got) != d+4 || string(got[d:]) != "tail" {
			t.Errorf("user=%v: file holds %d bytes ending %q", user, len(got), got[max(len(got)-4, 0):])
		}
	}
}

func TestWriteErrorWording(t *testing.T) {
	tg := &Target{Name: "/dev/x", IsBlock: true}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"enospc", unix.ENOSPC, "error writing '/dev/x' at offset 4096: No space left on device (target is smaller than the input)"},
		{"efbig", unix.EFBIG, "error writing '/dev/x' at offset 4096: File too large (target is smaller than the input)"},
		{"eio", unix.EIO, "error writing '/dev/x' at offset 4096: Input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tg.WriteError(4096, tc.err, true).Error(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	file := &Target{Name: "img", Regular: true}
	got := file.ExplainFull("blkwrite", unix.ENOSPC, 10).Error()
	if want := "no space left on device\nblkwrite: the file system holding 'img' is full: 10 bytes landed on it, the rest did not fit"; got != want {
		t.Errorf("ExplainFull: got %q\nwant %q", got, want)
	}
}
