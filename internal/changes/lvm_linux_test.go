package changes

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
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

// fillRandomDev writes size random bytes to dev, synchronously.
func fillRandomDev(tb testing.TB, dev string, size int, seed uint64) {
	tb.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DSYNC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, 1<<20)
	for off := 0; off < size; off += len(buf) {
		fillRandom(r, buf)
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			tb.Fatal(err)
		}
	}
}

// dirtyDev writes 40 random 4 KiB blocks and a 1 MiB run to dev with
// O_DSYNC, and discards the 128 KiB at discardOff unless it is negative.
// It returns the offsets of the 4 KiB blocks it touched.
func dirtyDev(tb testing.TB, dev string, seed uint64, discardOff int64) map[int64]bool {
	tb.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DSYNC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, ^seed))
	touched := map[int64]bool{}
	block := make([]byte, 4096)
	for range 40 {
		off := r.Int64N(lvmSize/4096) * 4096
		fillRandom(r, block)
		if _, err := f.WriteAt(block, off); err != nil {
			tb.Fatal(err)
		}
		touched[off] = true
	}
	run := make([]byte, 1<<20)
	fillRandom(r, run)
	const runOff = 9<<20 + 12288
	if _, err := f.WriteAt(run, runOff); err != nil {
		tb.Fatal(err)
	}
	for off := int64(runOff); off < runOff+1<<20; off += 4096 {
		touched[off] = true
	}
	// The last block of the volume: thin_delta once missed blocks at
	// the end of a device.
	fillRandom(r, block)
	if _, err := f.WriteAt(block, lvmSize-4096); err != nil {
		tb.Fatal(err)
	}
	touched[lvmSize-4096] = true
	if discardOff >= 0 {
		rng := [2]uint64{uint64(discardOff), 128 << 10}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng))); e != 0 {
			tb.Fatalf("BLKDISCARD on %s: %v", dev, e)
		}
		for off := discardOff; off < discardOff+128<<10; off += 4096 {
			touched[off] = true
		}
	}
	return touched
}

// checkDevChanges checks, block by block, that every 4 KiB block that
// differs between the devices old and new is in changed or zeroed, that
// zeroed blocks of new read as zeros, and that the lists hold at most 20 %
// more than the touched blocks rounded out to unit.
func checkDevChanges(tb testing.TB, old, new string, changed, zeroed List, touched map[int64]bool, unit int64) {
	tb.Helper()
	checkNormal(tb, changed)
	checkNormal(tb, zeroed)
	a, err := os.ReadFile(old)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(new)
	if err != nil {
		tb.Fatal(err)
	}
	if len(a) != lvmSize || len(b) != lvmSize {
		tb.Fatalf("%s has %d bytes, %s %d, want %d", old, len(a), new, len(b), lvmSize)
	}
	zero := make([]byte, 4096)
	differ := 0
	for off := int64(0); off < lvmSize; off += 4096 {
		blk := Range{off, 4096}
		if zeroed.Covers(blk) && !bytes.Equal(b[off:off+4096], zero) {
			tb.Errorf("block at %d is listed as discarded but does not read as zeros", off)
		}
		if bytes.Equal(a[off:off+4096], b[off:off+4096]) {
			continue
		}
		differ++
		if !touched[off] {
			tb.Errorf("block at %d differs but was not written", off)
		}
		if !changed.Covers(blk) && !zeroed.Covers(blk) {
			tb.Errorf("block at %d differs but the change list misses it", off)
		}
	}
	units := map[int64]bool{}
	for off := range touched {
		units[off/unit] = true
	}
	got := changed.Bytes() + zeroed.Bytes()
	if limit := int64(len(units)) * unit * 12 / 10; got > limit {
		tb.Errorf("change lists hold %d bytes, more than %d (%d units of %d touched)", got, limit, len(units), unit)
	}
	tb.Logf("%d blocks differ; changed: %d ranges, %d bytes; discarded: %d ranges, %d bytes; %d units of %d touched",
		differ, len(changed), changed.Bytes(), len(zeroed), zeroed.Bytes(), len(units), unit)
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
	fillRandomDev(t, "/dev/vg/thin", lvmSize, 5)
	lvm(t, "lvcreate -q -y -s -n a vg/thin")
	const discardOff = 20 << 20
	touched := dirtyDev(t, "/dev/vg/thin", 6, discardOff)
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
	checkDevChanges(t, "/dev/vg/a", "/dev/vg/b", td.Changed.Align(4096, lvmSize), td.Discarded.Align(4096, lvmSize), touched, td.BlockSize)

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
	fillRandomDev(t, "/dev/vg/origin", lvmSize, 7)
	// 16 KiB chunks: a 4 KiB write copies one.
	lvm(t, "lvcreate -q -y -s -c 16k -L 16M -n snap vg/origin")
	touched := dirtyDev(t, "/dev/vg/origin", 8, -1)

	c, err := ReadCOW("/dev/mapper/vg-snap-cow")
	if err != nil {
		t.Fatalf("ReadCOW: %v", err)
	}
	if c.ChunkSize != 16<<10 {
		t.Errorf("chunk size %d, want 16 KiB", c.ChunkSize)
	}
	// The snapshot holds the old data, the origin the new.
	checkDevChanges(t, "/dev/vg/snap", "/dev/vg/origin", c.Changed.Align(4096, lvmSize), nil, touched, c.ChunkSize)

	t.Run("overflow", func(t *testing.T) {
		// 8 MiB of writes to the origin overflow a 4 MiB snapshot,
		// which the kernel then marks invalid in its header.
		lvm(t, "lvcreate -q -y -s -c 16k -L 4M -n small vg/origin")
		fillRandomDev(t, "/dev/vg/origin", 8<<20, 9)
		_, err := ReadCOW("/dev/mapper/vg-small-cow")
		if !errors.Is(err, ErrNoChangeList) || !strings.Contains(err.Error(), "snapshot overflowed") {
			t.Fatalf("ReadCOW of an overflowed snapshot: %v, want ErrNoChangeList", err)
		}
		t.Log(err)
	})
}
