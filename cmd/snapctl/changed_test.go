package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// Disks of TestChangedLVM, in guest order.
const (
	changedPV      = "/dev/vda" // the volume group vg
	changedThinDst = "/dev/vdb" // the thin volume's copy
	changedCOWDst  = "/dev/vdc" // the classic volume's copy
	changedSize    = 16 << 20
)

// nightly is the command a nightly run gives snapctl run --keep-base: a
// changed-block delta from $BASE when there is one and a change list can
// be had, else a full copy, saying which and why.
const nightly = `set -o pipefail
if [ -n "$BASE" ] && snapctl changes "$BASE" "$SNAP" > /tmp/changes; then
	blkcat --changed-from "$BASE" --changes /tmp/changes -z lz4 "$SNAP" | blkwrite %[1]s
else
	echo "full copy: ${BASE_NOTE:-no change list}" >&2
	blkcat -q -z lz4 "$SNAP" | blkwrite %[1]s
fi`

// TestChangedLVM: in the guest, a thin and a classic logical volume are
// copied nightly with snapctl run --keep-base and changed-block deltas:
// random 4 KiB writes, a 1 MiB run and (thin) a discard each night; the
// copy must equal the volume and blkwrite must verify its BLAKE3. An
// overflowed classic base is reported and the run falls back to a full
// copy; two change lists asked of one pool at once both succeed.
func TestChangedLVM(t *testing.T) {
	if qemutest.InGuest() {
		guestChangedLVM(t)
		return
	}
	qemutest.NeedQEMU(t)
	qemutest.RunTest(t, qemutest.Config{
		Disks: []string{diskWith(t, 192<<20, nil), diskWith(t, changedSize, nil), diskWith(t, changedSize, nil)},
		Files: guestTools(t),
	})
}

func guestChangedLVM(t *testing.T) {
	os.Setenv("BLKPIPE_STATE_DIR", t.TempDir())
	sh(t, "pvcreate -q -y "+changedPV+" && vgcreate -q vg "+changedPV+
		" && lvcreate -q -y -L 64M -c 64k -T vg/pool && lvcreate -q -y -V 16M -T vg/pool -n thin"+
		" && lvcreate -q -y -L 16M -n cow vg")
	for _, dev := range []string{"/dev/vg/thin", "/dev/vg/cow"} {
		f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DSYNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(pattern('A', changedSize), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Run("thin", func(t *testing.T) {
		night(t, "thin", "/dev/vg/thin", changedThinDst, nil, "full copy: first run of lineage thin")
		for n := 1; n <= 2; n++ {
			churnDev(t, "/dev/vg/thin", uint64(n), true)
			out := night(t, "thin", "/dev/vg/thin", changedThinDst, nil, "changed blocks:")
			checkChangedLine(t, out)
		}
		// Two change lists of one pool at once: the pool holds one
		// metadata snapshot; the lock file serialises them.
		a, _ := expect(t, 0, nil, "create", "--name", "ra", "/dev/vg/thin")
		churnDev(t, "/dev/vg/thin", 9, true)
		b, _ := expect(t, 0, nil, "create", "--name", "rb", "/dev/vg/thin")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		cmd := fmt.Sprintf("snapctl changes %s %s > /tmp/l1 & snapctl changes %s %s > /tmp/l2; s2=$?; wait $!; s1=$?; [ $s1 = 0 ] && [ $s2 = 0 ] && cmp /tmp/l1 /tmp/l2", a, b, a, b)
		sh(t, cmd)
		expect(t, 0, nil, "remove", a, b)
	})
	t.Run("classic", func(t *testing.T) {
		night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "4M"}, "full copy: first run of lineage cow")
		for n := 1; n <= 2; n++ {
			churnDev(t, "/dev/vg/cow", uint64(10+n), false)
			out := night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "4M"}, "changed blocks:")
			checkChangedLine(t, out)
		}
		// More than the base's 4 MiB of changes: it overflows, is not
		// used, and the night makes a full copy.
		f, err := os.OpenFile("/dev/vg/cow", os.O_WRONLY|unix.O_DSYNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(pattern('C', 6<<20), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out := night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "8M"}, "full copy:")
		if !strings.Contains(out, "invalid") {
			t.Errorf("the overflowed base was not reported as invalid:\n%s", out)
		}
	})
}

// night runs one nightly copy of origin to dst and checks it: the copy
// equals the origin (nothing writes it meanwhile), blkwrite verified the
// origin's BLAKE3, and stderr says want.
func night(t *testing.T, lineage, origin, dst string, opts []string, want string) string {
	t.Helper()
	args := append(append([]string{"run", "--keep-base", lineage}, opts...), origin, "--", "sh", "-c", fmt.Sprintf(nightly, dst))
	c := exec.Command("/bin/snapctl", args...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("snapctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	src, got := readDisk(t, origin, changedSize), readDisk(t, dst, changedSize)
	if !bytes.Equal(src, got) {
		t.Fatalf("the copy differs from %s at byte %d:\n%s", origin, testutil.FirstDiff(src, got), out)
	}
	root := digest.Sum256(src)
	if !strings.Contains(string(out), "verified blake3 "+hex.EncodeToString(root[:])) {
		t.Fatalf("blkwrite did not verify %x:\n%s", root, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	return string(out)
}

// checkChangedLine checks that a changed-block night read and sent far
// less than the volume.
func checkChangedLine(t *testing.T, out string) {
	t.Helper()
	var listed, read, sent, blocks int64
	i := strings.Index(out, "changed blocks: ")
	if _, err := fmt.Sscanf(out[i:], "changed blocks: listed %d bytes, read %d bytes, sent %d bytes (%d blocks", &listed, &read, &sent, &blocks); err != nil {
		t.Fatalf("changed-blocks line: %v\n%s", err, out)
	}
	t.Logf("listed %d, read %d, sent %d bytes, %d blocks", listed, read, sent, blocks)
	if read > changedSize/4 || sent > changedSize/8 || blocks > 20+256+32 {
		t.Errorf("read %d, sent %d bytes (%d blocks) of a %d-byte volume", read, sent, blocks, changedSize)
	}
}

// churnDev writes 20 random 4 KiB blocks and a 1 MiB run to dev and, with
// discard, discards 128 KiB (BLKDISCARD: thin unmaps it).
func churnDev(t *testing.T, dev string, seed uint64, discard bool) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DSYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 1))
	blocks := changedSize / 4096
	for range 20 {
		if _, err := f.WriteAt(pattern(byte('a'+rng.IntN(26)), 4096), int64(rng.IntN(blocks))*4096); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt(pattern(byte('D'+seed%10), 1<<20), int64(rng.IntN(blocks-256))*4096); err != nil {
		t.Fatal(err)
	}
	if discard {
		rg := [2]uint64{uint64(rng.IntN(blocks/32-2)) * 128 << 10, 128 << 10}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rg))); e != 0 {
			t.Fatalf("BLKDISCARD: %v", e)
		}
	}
}
