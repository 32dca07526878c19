package blockdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

func mountFS(tb testing.TB, size int64, mkfs string, args ...string) string {
	tb.Helper()
	return testutil.MountFS(tb, size, mkfs, args...)
}

func TestCloneReflink(t *testing.T) {
	for _, tc := range []struct {
		name string
		mkfs string
		args []string
		size int64
	}{
		{"btrfs", "mkfs.btrfs", []string{"-q"}, 128 << 20},
		{"xfs", "mkfs.xfs", []string{"-q", "-m", "reflink=1"}, 320 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := mountFS(t, tc.size, tc.mkfs, tc.args...)
			want := bytes.Repeat([]byte("blkpipe clone\n"), 100000)
			src := filepath.Join(mnt, "src")
			if err := os.WriteFile(src, want, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d, err := os.Create(filepath.Join(mnt, "dst"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := Clone(d, s); err != nil {
				t.Fatalf("Clone: %v", err)
			}
			// Writing the source must not change the clone.
			if err := os.WriteFile(src, []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(d.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("clone holds %d bytes, want the %d bytes of the source", len(got), len(want))
			}
		})
	}
}

func TestCloneWithoutReflink(t *testing.T) {
	// tmpfs has no FICLONE.
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC && st.Type != unix.EXT4_SUPER_MAGIC {
		dir = mountFS(t, 64<<20, "mkfs.ext4", "-q")
	}
	s, err := os.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.WriteString("data")
	d, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = Clone(d, s)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EXDEV) {
		t.Fatalf("Clone on a filesystem without reflink = %v, want EOPNOTSUPP, EINVAL or EXDEV", err)
	}
	if !strings.Contains(err.Error(), "ioctl FICLONE") {
		t.Errorf("error %q does not name the ioctl", err)
	}
}

func TestFreezeThaw(t *testing.T) {
	mnt := mountFS(t, 64<<20, "mkfs.ext4", "-q")
	if err := Freeze(mnt); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	thawed := false
	defer func() {
		if !thawed {
			Thaw(mnt)
		}
	}()
	if err := Freeze(mnt); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second Freeze = %v, want EBUSY", err)
	}
	// A write must block while frozen and finish after the thaw.
	done := make(chan error, 1)
	go func() {
		done <- os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644)
	}()
	select {
	case err := <-done:
		t.Fatalf("write finished on a frozen filesystem: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := Thaw(mnt); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	thawed = true
	if err := <-done; err != nil {
		t.Fatalf("write after thaw: %v", err)
	}
	if err := Thaw(mnt); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Thaw of a thawed filesystem = %v, want EINVAL", err)
	}
	if err := Freeze(filepath.Join(mnt, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Freeze of a missing path = %v, want not-exist", err)
	}
}
