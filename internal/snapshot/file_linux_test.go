package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

func mountBtrfs(tb testing.TB) string {
	tb.Helper()
	return testutil.MountFS(tb, 128<<20, "mkfs.btrfs", "-q")
}

func mountXFS(tb testing.TB) string {
	tb.Helper()
	// XFS needs about 300 MiB; the image is sparse.
	return testutil.MountFS(tb, 320<<20, "mkfs.xfs", "-q", "-m", "reflink=1")
}

func newTestManager(tb testing.TB) *Manager {
	tb.Helper()
	testutil.NeedRoot(tb)
	return &Manager{StateDir: filepath.Join(tb.TempDir(), "state"), RemoveTimeout: 2 * time.Second}
}

// image writes a file of n bytes with a recognisable pattern.
func image(tb testing.TB, path string, n int) []byte {
	tb.Helper()
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	if err := os.WriteFile(path, b, 0o640); err != nil {
		tb.Fatal(err)
	}
	return b
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestBtrfsCreateListRemove(t *testing.T) {
	m := newTestManager(t)
	testutil.NeedCmd(t, "btrfs")
	mnt := mountBtrfs(t)
	vol := filepath.Join(mnt, "vols")
	testutil.Run(t, "btrfs", "subvolume", "create", vol)
	origin := filepath.Join(vol, "disk.img")
	want := image(t, origin, 1<<20)
	ctx := context.Background()

	s, err := m.Create(ctx, origin, Options{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if s.Backend != Btrfs {
		t.Errorf("backend %s, want btrfs", s.Backend)
	}
	if wantPath := filepath.Join(mnt, ".snapctl", s.Subvolume[len(mnt)+len("/.snapctl/"):], "disk.img"); s.Path != wantPath {
		t.Errorf("Path %s, want %s", s.Path, wantPath)
	}
	if !strings.HasPrefix(filepath.Base(s.Subvolume), "vols_snapctl_") {
		t.Errorf("subvolume %s lacks the vols_snapctl_ prefix", s.Subvolume)
	}
	// The origin changes, the snapshot does not; it is read-only.
	image(t, origin, 4096)
	if got := readFile(t, s.Path); !bytes.Equal(got, want) {
		t.Fatalf("snapshot holds %d bytes, want the origin's %d from before", len(got), len(want))
	}
	if err := os.WriteFile(s.Path, []byte("x"), 0); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing the snapshot: %v, want EROFS", err)
	}

	list, err := m.List(ctx, ListOptions{Backend: Btrfs})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Path != s.Path || list[0].Origin != origin {
		t.Fatalf("List = %+v, want the one snapshot", list)
	}
	// The subvolume names the snapshot as well as the file in it.
	if err := m.Remove(ctx, s.Subvolume); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if exists(s.Subvolume) {
		t.Errorf("subvolume %s still there", s.Subvolume)
	}
	if list, _ := m.List(ctx, ListOptions{}); len(list) != 0 {
		t.Errorf("List after Remove = %+v", list)
	}
	// A subvolume snapctl did not make is not touched.
	other := filepath.Join(mnt, "other")
	testutil.Run(t, "btrfs", "subvolume", "snapshot", "-r", vol, other)
	if err := m.Remove(ctx, other); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Remove of a foreign subvolume = %v, want ErrNotOurs", err)
	}
	if !exists(other) {
		t.Errorf("foreign subvolume removed")
	}
}

func TestReflinkCreateListRemove(t *testing.T) {
	for _, fs := range []string{"xfs", "btrfs"} {
		t.Run(fs, func(t *testing.T) {
			m := newTestManager(t)
			var mnt string
			var o Options
			if fs == "xfs" {
				mnt = mountXFS(t)
			} else {
				mnt = mountBtrfs(t)
				o.Backend = Reflink // auto would pick btrfs
			}
			origin := filepath.Join(mnt, "vm.img")
			want := image(t, origin, 1<<20)
			ctx := context.Background()
			s, err := m.Create(ctx, origin, o)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if s.Backend != Reflink || filepath.Dir(s.Path) != filepath.Join(mnt, ".snapctl") ||
				!strings.HasPrefix(filepath.Base(s.Path), "vm.img_snapctl_") {
				t.Errorf("snapshot %+v", s)
			}
			image(t, origin, 4096)
			if got := readFile(t, s.Path); !bytes.Equal(got, want) {
				t.Fatalf("clone holds %d bytes, want the origin's %d from before", len(got), len(want))
			}
			v := make([]byte, 256)
			n, err := unix.Getxattr(s.Path, xattrOrigin, v)
			if err != nil || string(v[:n]) != origin {
				t.Errorf("xattr %s = %q, %v; want %q", xattrOrigin, v[:n], err, origin)
			}
			list, err := m.List(ctx, ListOptions{Backend: Reflink})
			if err != nil || len(list) != 1 || list[0].Path != s.Path {
				t.Fatalf("List = %+v, %v", list, err)
			}
			if err := m.Remove(ctx, s.Path); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if exists(s.Path) {
				t.Error("clone still there")
			}
			// A file snapctl did not make is not touched, even in .snapctl.
			foreign := filepath.Join(mnt, ".snapctl", "vm.img_snapctl_20200101T000000")
			image(t, foreign, 16)
			if err := m.Remove(ctx, foreign); !errors.Is(err, ErrNotOurs) {
				t.Errorf("Remove of a foreign file = %v, want ErrNotOurs", err)
			}
			if !exists(foreign) {
				t.Error("foreign file removed")
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	m := newTestManager(t)
	xfs := mountXFS(t)
	ext4 := testutil.MountFS(t, 64<<20, "mkfs.ext4", "-q")
	image(t, filepath.Join(xfs, "a.img"), 4096)
	image(t, filepath.Join(ext4, "a.img"), 4096)
	os.Mkdir(filepath.Join(xfs, "dir"), 0o755)
	ctx := context.Background()
	if _, err := m.Create(ctx, filepath.Join(xfs, "a.img"), Options{Name: "taken"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		origin string
		o      Options
		want   error
		msg    string
	}{
		{"not found", filepath.Join(xfs, "missing.img"), Options{}, ErrNotFound, "missing.img: origin not found"},
		{"name exists", filepath.Join(xfs, "a.img"), Options{Name: "taken"}, ErrExists, ".snapctl/taken: name already exists"},
		{"no reflink", filepath.Join(ext4, "a.img"), Options{}, ErrNoReflink, "filesystem does not support reflink"},
		{"directory off btrfs", filepath.Join(xfs, "dir"), Options{}, ErrUnsupported, "is a directory outside btrfs"},
		{"lvm on a file", filepath.Join(xfs, "a.img"), Options{Backend: LVM}, ErrUnsupported, "is not a block device"},
		{"btrfs on xfs", filepath.Join(xfs, "a.img"), Options{Backend: Btrfs}, ErrUnsupported, "is not on btrfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dirList(t, xfs, ext4, m.StateDir)
			_, err := m.Create(ctx, tc.origin, tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Create = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if after := dirList(t, xfs, ext4, m.StateDir); after != before {
				t.Errorf("Create changed files:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// dirList lists every file under dirs, to show that nothing changed.
func dirList(tb testing.TB, dirs ...string) string {
	tb.Helper()
	var names []string
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				names = append(names, p)
			}
			return nil
		})
	}
	return strings.Join(names, " ")
}

func TestGC(t *testing.T) {
	m := newTestManager(t)
	mnt := mountXFS(t)
	origin := filepath.Join(mnt, "vm.img")
	image(t, origin, 4096)
	ctx := context.Background()
	now := time.Now()
	m.now = func() time.Time { return now.Add(-7 * time.Hour) }
	old, err := m.Create(ctx, origin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.now = func() time.Time { return now.Add(-time.Hour) }
	young, err := m.Create(ctx, origin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.now = func() time.Time { return now }
	removed, err := m.GC(ctx, 6*time.Hour, ListOptions{Backend: Reflink})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Path != old.Path {
		t.Fatalf("GC removed %+v, want only %s", removed, old.Path)
	}
	if exists(old.Path) || !exists(young.Path) {
		t.Errorf("after GC: old there %v, young there %v", exists(old.Path), exists(young.Path))
	}
	// A clone removed by hand leaves a stale state entry: GC drops it.
	os.Remove(young.Path)
	if _, err := m.GC(ctx, 6*time.Hour, ListOptions{Backend: Reflink}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(m.StateDir); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}

// TestGCUnmounted: GC while the filesystem of a snapshot is not mounted
// (an external disk, a mount that failed at boot) keeps its state, so the
// snapshot is listed and removable once the filesystem is back.
func TestGCUnmounted(t *testing.T) {
	m := newTestManager(t)
	mnt := mountXFS(t)
	origin := filepath.Join(mnt, "vm.img")
	image(t, origin, 4096)
	ctx := context.Background()
	s, err := m.Create(ctx, origin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "SOURCE", mnt))
	testutil.Run(t, "umount", mnt)
	if removed, err := m.GC(ctx, time.Hour, ListOptions{Backend: Reflink}); err != nil || len(removed) != 0 {
		t.Fatalf("GC: removed %v, %v", removed, err)
	}
	testutil.Run(t, "mount", dev, mnt)
	if all, err := m.List(ctx, ListOptions{Backend: Reflink}); err != nil || len(all) != 1 || all[0].Path != s.Path {
		t.Errorf("List after the remount: %+v, %v; want %s", all, err, s.Path)
	}
	if err := m.Remove(ctx, s.Path); err != nil {
		t.Errorf("Remove after the remount: %v", err)
	}
}

func TestFreezeAndHooks(t *testing.T) {
	m := newTestManager(t)
	testutil.NeedCmd(t, "mkfs.ext4")
	outer := mountXFS(t)
	// A file-backed volume: an ext4 image on XFS, mounted through a loop
	// device. Its filesystem is frozen while the image is cloned.
	img := filepath.Join(outer, "vol.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	dev := testutil.LoopDevice(t, img)
	testutil.Run(t, "mkfs.ext4", "-q", dev)
	inner := t.TempDir()
	testutil.Run(t, "mount", dev, inner)
	t.Cleanup(func() { exec.Command("umount", inner).Run() })
	if err := os.WriteFile(filepath.Join(inner, "data"), []byte("written before the snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "log")
	hooks := Options{
		Freeze: inner,
		Pre:    `echo "pre $SNAPCTL_ORIGIN" >>` + log,
		Post:   `echo "post $SNAP" >>` + log,
	}
	ctx := context.Background()
	s, err := m.Create(ctx, img, hooks)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got, want := string(readFile(t, log)), "pre "+img+"\npost "+s.Path+"\n"; got != want {
		t.Errorf("hooks logged %q, want %q", got, want)
	}
	// Thawed: a write goes through.
	writeSoon(t, filepath.Join(inner, "after"))
	// The clone holds a clean filesystem with the data (fsck -n passes).
	testutil.Run(t, "e2fsck", "-fn", s.Path)

	// On failure (the name is taken) the filesystem is thawed too and
	// Post still runs.
	os.Remove(log)
	hooks.Name = filepath.Base(s.Path)
	if _, err := m.Create(ctx, img, hooks); !errors.Is(err, ErrExists) {
		t.Fatalf("Create with a taken name = %v", err)
	}
	writeSoon(t, filepath.Join(inner, "after2"))

	// A failing Pre stops the snapshot; Post runs; nothing is frozen.
	hooks.Name = ""
	hooks.Pre = "echo pre >>" + log + "; exit 3"
	before := dirList(t, outer)
	if _, err := m.Create(ctx, img, hooks); err == nil || !strings.Contains(err.Error(), "pre hook") {
		t.Fatalf("Create with failing pre = %v", err)
	}
	if got, want := string(readFile(t, log)), "pre\npost \n"; got != want {
		t.Errorf("hooks logged %q, want %q", got, want)
	}
	if after := dirList(t, outer); after != before {
		t.Errorf("failed pre hook left files: %s", after)
	}
	writeSoon(t, filepath.Join(inner, "after3"))

	// Freezing the filesystem the clone is written to would hang: refused.
	if _, err := m.Create(ctx, img, Options{Freeze: outer}); err == nil || !strings.Contains(err.Error(), "would hang") {
		t.Fatalf("Create freezing its own filesystem = %v", err)
	}
	writeSoon(t, filepath.Join(outer, "after"))
}

// writeSoon fails the test if a write to path does not finish within 10 s
// (the filesystem was left frozen); it then thaws it.
func writeSoon(tb testing.TB, path string) {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(path, []byte("x"), 0o644) }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		unix.Syscall(unix.SYS_IOCTL, 0, 0, 0)
		exec.Command("fsfreeze", "-u", filepath.Dir(path)).Run()
		tb.Fatalf("write to %s blocked: filesystem left frozen", path)
	}
}
