package changes

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// The LVM tests run in a QEMU guest (internal/testenv/qemutest): LVM is
// never touched on the host. The guest's only disk, /dev/vda, is the PV.

const lvmSize = 32 << 20 // the volumes whose changes are listed

func guestDisk(t *testing.T) {
	qemutest.NeedQEMU(t)
	qemutest.RunTest(t, qemutest.Config{Disks: []string{testutil.SparseFile(t, 192<<20)}})
}

// lvm runs a shell command in the guest and fails the test on error.
func lvm(tb testing.TB, script string) string {
	tb.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

// discard discards the 128 KiB at off of the block device f (BLKDISCARD).
func discard(tb testing.TB, off int64) func(*os.File) Range {
	return func(f *os.File) Range {
		rng := [2]uint64{uint64(off), 128 << 10}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng))); e != 0 {
			tb.Fatalf("BLKDISCARD on %s: %v", f.Name(), e)
		}
		return Range{off, 128 << 10}
	}
}

// guestThinDelta returns thin_delta: the guest's initramfs links only some
// thin tools to pdata_tools, which picks the tool by the name it is run
// as, so link it here when thin_delta is missing.
func guestThinDelta(t *testing.T) string {
	if p, err := exec.LookPath("thin_delta"); err == nil {
		return p
	}
	pdata, err := exec.LookPath("pdata_tools")
	if err != nil {
		testutil.Skip(t, "needs thin_delta or pdata_tools on PATH")
	}
	p := filepath.Join(t.TempDir(), "thin_delta")
	if err := os.Symlink(pdata, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestThinGuest(t *testing.T) {
	if !qemutest.InGuest() {
		guestDisk(t)
		return
	}
	testutil.NeedCmd(t, "lvcreate", "dmsetup")
	thinDelta := guestThinDelta(t)
	// 64 KiB data blocks (-c), so a 4 KiB write maps one whole block.
	lvm(t, "pvcreate -q -y /dev/vda && vgcreate -q vg /dev/vda && lvcreate -q -y -L 96M -c 64k -T vg/pool && lvcreate -q -y -V 32M -T vg/pool -n thin")
	writeRandom(t, "/dev/vg/thin", 0, lvmSize, 5)
	lvm(t, "lvcreate -q -y -s -n a vg/thin")
	const discardOff = 20 << 20
	touched := dirty(t, "/dev/vg/thin", lvmSize, 6, discard(t, discardOff))
	lvm(t, "lvcreate -q -y -s -n b vg/thin")
	ids := strings.Fields(lvm(t, "lvs --noheadings -o thin_id vg/a vg/b"))
	if len(ids) != 2 {
		t.Fatalf("thin ids %q", ids)
	}
	a, _ := strconv.ParseUint(ids[0], 10, 64)
	b, _ := strconv.ParseUint(ids[1], 10, 64)

	th := &Thin{Pool: "vg-pool-tpool", Metadata: "/dev/mapper/vg-pool_tmeta",
		Lock: filepath.Join(t.TempDir(), "lock"), ThinDelta: thinDelta}
	td, err := th.Delta(context.Background(), a, b)
	if err != nil {
		t.Fatalf("Delta: %v", err)
	}
	if td.BlockSize != 64<<10 {
		t.Errorf("block size %d, want 64 KiB", td.BlockSize)
	}
	if !td.Discarded.Covers(Range{discardOff, 128 << 10}) {
		t.Errorf("the discarded 128 KiB at %d are not in %v", discardOff, td.Discarded)
	}
	// The metadata snapshot was released: reserving one works again.
	lvm(t, "dmsetup message vg-pool-tpool 0 reserve_metadata_snap && dmsetup message vg-pool-tpool 0 release_metadata_snap")

	lvm(t, "lvchange -q -ay -Ky vg/a vg/b")
	checkBlocks(t, readAll(t, "/dev/vg/a"), readAll(t, "/dev/vg/b"),
		td.Changed.Align(4096, lvmSize), td.Discarded.Align(4096, lvmSize), touched, td.BlockSize)

	// No change: the same snapshot twice.
	if td, err = th.Delta(context.Background(), b, b); err != nil || len(td.Changed)+len(td.Discarded) != 0 {
		t.Errorf("Delta of a snapshot with itself: %+v, %v", td, err)
	}
	// A thin id the pool does not have fails, and still releases.
	if _, err := th.Delta(context.Background(), a, 999); err == nil {
		t.Error("Delta with thin id 999 succeeded")
	} else {
		t.Log(err)
	}
	lvm(t, "dmsetup message vg-pool-tpool 0 reserve_metadata_snap && dmsetup message vg-pool-tpool 0 release_metadata_snap")
}

func TestCowGuest(t *testing.T) {
	if !qemutest.InGuest() {
		guestDisk(t)
		return
	}
	testutil.NeedCmd(t, "lvcreate")
	lvm(t, "pvcreate -q -y /dev/vda && vgcreate -q vg /dev/vda && lvcreate -q -y -L 32M -n origin vg")
	writeRandom(t, "/dev/vg/origin", 0, lvmSize, 7)
	// 16 KiB chunks: a 4 KiB write copies one.
	lvm(t, "lvcreate -q -y -s -c 16k -L 16M -n snap vg/origin")
	touched := dirty(t, "/dev/vg/origin", lvmSize, 8, nil)

	c, err := ReadCOW("/dev/mapper/vg-snap-cow")
	if err != nil {
		t.Fatalf("ReadCOW: %v", err)
	}
	if c.ChunkSize != 16<<10 {
		t.Errorf("chunk size %d, want 16 KiB", c.ChunkSize)
	}
	// The snapshot holds the old data, the origin the new.
	checkBlocks(t, readAll(t, "/dev/vg/snap"), readAll(t, "/dev/vg/origin"),
		c.Changed.Align(4096, lvmSize), nil, touched, c.ChunkSize)

	t.Run("overflow", func(t *testing.T) {
		// 8 MiB of writes to the origin overflow a 4 MiB snapshot,
		// which the kernel then marks invalid in its header.
		lvm(t, "lvcreate -q -y -s -c 16k -L 4M -n small vg/origin")
		writeRandom(t, "/dev/vg/origin", 0, 8<<20, 9)
		_, err := ReadCOW("/dev/mapper/vg-small-cow")
		if !errors.Is(err, ErrNoChangeList) || !strings.Contains(err.Error(), "snapshot overflowed") {
			t.Fatalf("ReadCOW of an overflowed snapshot: %v, want ErrNoChangeList", err)
		}
		t.Log(err)
	})
}
