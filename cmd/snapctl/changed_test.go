package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/blkpipe/blkpipe/internal/snapshot"
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
// copy must equal the night's snapshot (and the volume, when nothing
// writes it), blkwrite must verify its BLAKE3 and b3sum of the copy
// print the same. A base removed by hand (thin), an overflowed classic
// base and a base record put back to an older snapshot are reported and
// the run falls back to a full copy; two change lists asked of one pool
// at once both succeed and leave no metadata snapshot held, and one held
// outside snapctl makes a full copy that says so. Then each
// volume gets an ext4 (guestChangedFS): a file deleted (thin: trimmed,
// sent as ZERO records) and a writer busy while a snapshot is taken.
func TestChangedLVM(t *testing.T) {
	if qemutest.InGuest() {
		guestChangedLVM(t)
		return
	}
	qemutest.NeedQEMU(t)
	testutil.NeedCmd(t, "mke2fs", "b3sum")
	files := guestTools(t)
	for guest, host := range map[string]string{"/opt/e2fs/mke2fs": "mke2fs", "/bin/b3sum": "b3sum"} {
		p, err := exec.LookPath(host)
		if err != nil {
			t.Fatal(err)
		}
		files[guest] = p
	}
	qemutest.RunTest(t, qemutest.Config{
		Disks:   []string{diskWith(t, 192<<20, nil), diskWith(t, changedSize, nil), diskWith(t, changedSize, nil)},
		Files:   files,
		Timeout: 25 * time.Minute,
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
		// The base removed by hand: reported, not used, a full copy.
		base := recordedBase(t, "thin")
		sh(t, "lvremove -q -y "+base.VG+"/"+base.LV)
		churnDev(t, "/dev/vg/thin", 3, true)
		out := night(t, "thin", "/dev/vg/thin", changedThinDst, nil, "full copy: lineage thin: base not usable: base "+base.Path+" is missing")
		if !strings.Contains(out, "; not used\n") {
			t.Errorf("the missing base was not reported as not used:\n%s", out)
		}
		// Two change lists of one pool at once: the pool holds one
		// metadata snapshot; the lock file serialises them.
		a, _ := expect(t, 0, nil, "create", "--name", "ra", "/dev/vg/thin")
		churnDev(t, "/dev/vg/thin", 9, true)
		b, _ := expect(t, 0, nil, "create", "--name", "rb", "/dev/vg/thin")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		cmd := fmt.Sprintf("snapctl changes %s %s > /tmp/l1 & snapctl changes %s %s > /tmp/l2; s2=$?; wait $!; s1=$?; [ $s1 = 0 ] && [ $s2 = 0 ] && cmp /tmp/l1 /tmp/l2", a, b, a, b)
		sh(t, cmd)
		heldMetadata(t)
		expect(t, 0, nil, "remove", a, b)
		// A metadata snapshot held outside snapctl (a thin_dump, a
		// killed run): the change list is refused, saying so, and the
		// night makes a full copy; released, the next is a delta again.
		sh(t, "dmsetup message vg-pool-tpool 0 reserve_metadata_snap")
		churnDev(t, "/dev/vg/thin", 4, true)
		out = night(t, "thin", "/dev/vg/thin", changedThinDst, nil, "full copy: no change list")
		if !strings.Contains(out, "thin pool vg-pool-tpool already holds a metadata snapshot (at block ") {
			t.Errorf("the held metadata snapshot was not named:\n%s", out)
		}
		sh(t, "dmsetup message vg-pool-tpool 0 release_metadata_snap")
		churnDev(t, "/dev/vg/thin", 5, true)
		night(t, "thin", "/dev/vg/thin", changedThinDst, nil, "changed blocks:")
	})
	t.Run("thin ext4", func(t *testing.T) {
		guestChangedFS(t, "thin", "/dev/vg/thin", changedThinDst, nil, true)
		heldMetadata(t)
	})
	t.Run("classic", func(t *testing.T) {
		night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "4M"}, "full copy: first run of lineage cow")
		old, _ := expect(t, 0, nil, "create", "--size", "4M", "--name", "cowold", "/dev/vg/cow")
		old = strings.TrimSpace(old)
		for n := 1; n <= 2; n++ {
			churnDev(t, "/dev/vg/cow", uint64(10+n), false)
			out := night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "4M"}, "changed blocks:")
			checkChangedLine(t, out)
		}
		// The base record put back to a snapshot older than the last
		// verified copy (a restored backup of the state directory):
		// reported, not used, a full copy; and that base goes.
		verified := recordedBase(t, "cow")
		js, _ := expect(t, 0, nil, "list", "--json")
		var all []snapshot.Snapshot
		if err := json.Unmarshal([]byte(js), &all); err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Path == old {
				b, _ := json.Marshal(s)
				if err := os.WriteFile(baseRecord(t, "cow"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		churnDev(t, "/dev/vg/cow", 13, false)
		out := night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "4M"}, "full copy: lineage cow: base not usable: base "+old+" (made ")
		if !strings.Contains(out, "is older than the last verified copy (of "+verified.Path+", made ") || !strings.Contains(out, "; not used\n") {
			t.Errorf("the older base was not reported as such:\n%s", out)
		}
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Errorf("the older base %s is still there: %v", old, err)
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
		out = night(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "8M"}, "full copy:")
		if !strings.Contains(out, "invalid") {
			t.Errorf("the overflowed base was not reported as invalid:\n%s", out)
		}
	})
	t.Run("classic ext4", func(t *testing.T) {
		guestChangedFS(t, "cow", "/dev/vg/cow", changedCOWDst, []string{"--size", "12M"}, false)
	})
}

// night runs one nightly copy of origin to dst and checks it: the copy
// equals the origin (nothing writes it meanwhile), blkwrite verified the
// origin's BLAKE3, and stderr says want.
func night(t *testing.T, lineage, origin, dst string, opts []string, want string) string {
	t.Helper()
	out, _ := nightOf(t, lineage, origin, dst, opts, fmt.Sprintf(nightly, dst), want, true)
	return out
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
