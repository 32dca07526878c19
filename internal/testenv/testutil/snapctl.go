package testutil

import (
	"os/exec"
	"testing"
)

// MountFS makes a filesystem with mkfs (args come before the device, e.g.
// "-q", "-m", "reflink=1") on a sparse loop image of size bytes, mounts it
// on a fresh temporary directory and returns that directory. Cleanup
// unmounts it (lazily if it is still busy) before the loop device goes.
// Needs root.
func MountFS(tb testing.TB, size int64, mkfs string, args ...string) string {
	tb.Helper()
	NeedRoot(tb)
	NeedCmd(tb, mkfs, "mount", "umount")
	dev, _ := LoopImage(tb, size)
	Run(tb, mkfs, append(args, dev)...)
	mnt := tb.TempDir()
	Run(tb, "mount", dev, mnt)
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}
