package testutil

import (
	"os/exec"
	"testing"
)

// Remountable is a file system on a loop image that a test unmounts and
// mounts again, as a reboot would.
type Remountable struct {
	tb      testing.TB
	Dev     string // the loop device it is on now
	Image   string // the image file
	Dir     string // where it is mounted
	mounted bool
}

// RemountableFS makes a file system with mkfs (args come before the
// device) on a sparse loop image of size bytes and mounts it on a fresh
// temporary directory; cleanup unmounts it if it is mounted (lazily if it
// is still busy) before the loop devices go. Needs root.
func RemountableFS(tb testing.TB, size int64, mkfs string, args ...string) *Remountable {
	tb.Helper()
	NeedRoot(tb)
	NeedCmd(tb, mkfs, "mount", "umount")
	m := &Remountable{tb: tb}
	m.Dev, m.Image = LoopImage(tb, size)
	Run(tb, mkfs, append(args, m.Dev)...)
	m.Dir = tb.TempDir()
	tb.Cleanup(m.cleanup)
	m.Mount()
	return m
}

// cleanup unmounts m if it is mounted.
func (m *Remountable) cleanup() {
	if !m.mounted {
		return
	}
	m.mounted = false
	if out, err := exec.Command("umount", m.Dir).CombinedOutput(); err != nil {
		m.tb.Errorf("umount %s: %v %s", m.Dir, err, out)
		exec.Command("umount", "-l", m.Dir).Run()
	}
}

// Mount mounts the file system on m.Dir.
func (m *Remountable) Mount() {
	m.tb.Helper()
	Run(m.tb, "mount", m.Dev, m.Dir)
	m.mounted = true
}

// Unmount unmounts it.
func (m *Remountable) Unmount() {
	m.tb.Helper()
	Run(m.tb, "umount", m.Dir)
	m.mounted = false
}

// Reattach attaches the image, unmounted, on another loop device, as
// after a reboot; the old one stays attached, unused, until the cleanup.
func (m *Remountable) Reattach() {
	m.tb.Helper()
	m.Dev = LoopDevice(m.tb, m.Image)
	m.tb.Cleanup(m.cleanup) // before the new device is detached
}
