package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// TestChangedAfterRemount: a btrfs file system holding the image, its
// snapshots and the target is unmounted and mounted again between nights
// (as a reboot does), which gives its files another st_dev. blkcat
// --changed-from still finds BASE's leaf map and sums (it reads only the
// changed leaves, not all of BASE), and blkwrite still verifies the delta
// from the target's map. A BASE or a target rewritten (same bytes, new
// ctime) while the file system was unmounted and mounted again is not
// trusted: blkcat reads BASE whole, blkwrite refuses the delta.
func TestChangedAfterRemount(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "cp", "mkfs.btrfs")
	fs := testutil.RemountableFS(t, 512<<20, "mkfs.btrfs", "-q")
	p := clonePair(t, fs.Dir)
	env := []string{"BLKPIPE_STATE_DIR=" + t.TempDir()}
	writeFile(t, p.live, randomBytes(changedImageSize, 61))
	target := filepath.Join(fs.Dir, "target.img")
	base := p.snap(t, "s0")
	if _, stderr, code := sh(t, env, "$BC -q "+base+" | $BW -q "+target); code != 0 {
		t.Fatalf("full copy: exit %d\n%s", code, stderr)
	}
	night := 0
	// run sends the night's changes from base onto target; it returns
	// blkwrite's and blkcat's stderr, the bytes blkcat read, and the
	// exit code.
	run := func() (stderr string, read int64, code int) {
		t.Helper()
		night++
		churn(t, p.live, uint64(60+night))
		next := p.snap(t, fmt.Sprintf("s%d", night))
		_, stderr, code = sh(t, env, fmt.Sprintf("$BC --changed-from %s %s | $BW %s", base, next, target))
		if m := regexp.MustCompile(`changed blocks: listed \d+ bytes, read (\d+) bytes`).FindStringSubmatch(stderr); m != nil {
			fmt.Sscan(m[1], &read)
		} else if code == 0 {
			t.Fatalf("night %d: no changed-blocks line:\n%s", night, stderr)
		}
		if code == 0 {
			checkCopy(t, stderr, next, target)
			base = next
		}
		return stderr, read, code
	}
	stDev := func() uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(target, &st); err != nil {
			t.Fatal(err)
		}
		return uint64(st.Dev)
	}
	// remount unmounts the file system, mounts another btrfs (which
	// takes the anonymous device number) and mounts it again, calling
	// between (if not nil) while it is mounted there, then unmounting
	// and mounting it once more.
	remount := func(between func()) {
		t.Helper()
		before := stDev()
		fs.Unmount()
		testutil.MountFS(t, 256<<20, "mkfs.btrfs", "-q")
		fs.Mount()
		if between != nil {
			between()
			fs.Unmount()
			fs.Mount()
		}
		if after := stDev(); after == before {
			t.Skipf("st_dev %d is the same after a remount on this kernel: nothing to test", after)
		}
	}
	// Night 1 makes BASE's sent record (blkcat reads all of it once).
	if stderr, _, code := run(); code != 0 || !strings.Contains(stderr, "no usable leaf map") {
		t.Fatalf("night 1: exit %d, want BASE read once:\n%s", code, stderr)
	}

	remount(nil)
	stderr, read, code := run()
	if code != 0 {
		t.Fatalf("night 2 after a remount: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "no usable leaf map") || read > changedImageSize/4 {
		t.Errorf("night 2 after a remount: blkcat read %d bytes of a %d-byte BASE, want only changed leaves:\n%s", read, changedImageSize, stderr)
	}
	if strings.Contains(stderr, "no valid digest map") {
		t.Errorf("night 2 after a remount: blkwrite did not verify from its map:\n%s", stderr)
	}

	// BASE rewritten with its own bytes between mounts: its ctime moved,
	// its sent record is not trusted; the target's still is.
	remount(func() { rewrite(t, base) })
	stderr, _, code = run()
	if code != 0 || !strings.Contains(stderr, "no usable leaf map") || !strings.Contains(stderr, "changed since it was sent") {
		t.Errorf("night 3, BASE rewritten: exit %d, want blkcat to read all of BASE:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "no valid digest map") {
		t.Errorf("night 3: blkwrite did not verify from its map:\n%s", stderr)
	}

	// The target rewritten between mounts: its copy record is not
	// trusted, and the delta is refused, nothing verified.
	remount(func() { rewrite(t, target) })
	stderr, _, code = run()
	if code == 0 || strings.Contains(stderr, "verified blake3") || !strings.Contains(stderr, "was written, replaced or restored since") ||
		!strings.Contains(stderr, "nothing was written") {
		t.Errorf("night 4, target rewritten: exit %d, want the delta refused:\n%s", code, stderr)
	}
}

// rewrite writes the file at path's own bytes over it: its content stays,
// its ctime moves.
func rewrite(t *testing.T, path string) {
	t.Helper()
	b := mustRead(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b[:4096], 0); err != nil {
		t.Fatal(err)
	}
}
