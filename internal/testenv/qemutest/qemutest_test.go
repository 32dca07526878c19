package qemutest

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestLVMGuestBoot boots the guest once: the device-mapper targets that
// snapctl needs are there, lvm runs, a disk is visible and what the guest
// writes to it is read back on the host.
func TestLVMGuestBoot(t *testing.T) {
	NeedQEMU(t)
	disk := testutil.SparseFile(t, 8<<20)
	res := Boot(t, Config{
		Disks: []string{disk},
		Script: `set -e
dmsetup targets | sort
lvm version | head -1
echo hello-from-guest | dd of=/dev/vda conv=fsync 2>/dev/null
exit 7`,
	})
	if res.Status != 7 {
		t.Fatalf("status %d, want the script's 7; console:\n%s", res.Status, res.Console)
	}
	for _, want := range []string{"snapshot-origin", "snapshot ", "thin-pool", "thin ", "LVM version:"} {
		if !strings.Contains(res.Console, want) {
			t.Errorf("console lacks %q:\n%s", want, res.Console)
		}
	}
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("hello-from-guest\n")) {
		t.Errorf("disk starts %q, want what the guest wrote", b[:32])
	}
}

func TestLVMGuestModuleOrder(t *testing.T) {
	NeedQEMU(t)
	if _, err := assets(); err != nil {
		t.Fatal(err)
	}
	pkg, version, err := kernelPackage()
	if err != nil {
		t.Fatal(err)
	}
	order, err := os.ReadFile(cacheRoot() + "/" + pkg + "_" + version + "_" + modulesKey() + "/modules.order")
	if err != nil {
		t.Fatal(err)
	}
	mods := strings.Fields(string(order))
	pos := map[string]int{}
	for i, m := range mods {
		pos[m] = i
	}
	// Dependencies come first; crc32c_generic before libcrc32c.
	for _, pair := range [][2]string{
		{"crc32c_generic.ko", "libcrc32c.ko"}, {"virtio.ko", "virtio_pci.ko"}, {"dm-mod.ko", "dm-snapshot.ko"},
		{"dm-bufio.ko", "dm-snapshot.ko"}, {"dm-persistent-data.ko", "dm-thin-pool.ko"}, {"dm-bio-prison.ko", "dm-thin-pool.ko"},
		{"jbd2.ko", "ext4.ko"}, {"mbcache.ko", "ext4.ko"},
	} {
		a, aok := pos[pair[0]]
		b, bok := pos[pair[1]]
		if !aok || !bok || a > b {
			t.Errorf("modules.order %v: want %s before %s", mods, pair[0], pair[1])
		}
	}
}

// TestGuestSkips reads skips, with their reasons, out of a guest's console
// (go test -v output between kernel messages) so the host can report them.
func TestGuestSkips(t *testing.T) {
	console := "[    1.2] virtio_blk virtio0: [vda] 16384 512-byte logical blocks\r\n" +
		"=== RUN   TestLVM\r\n" +
		"=== RUN   TestLVM/thin\r\n" +
		"    lvm_test.go:40: needs thin_check on PATH\r\n" +
		"    --- SKIP: TestLVM/thin (0.01s)\r\n" +
		"=== RUN   TestLVM/plain\r\n" +
		"    lvm_test.go:50: made vg/data\r\n" +
		"--- PASS: TestLVM (0.50s)\r\n" +
		"    --- PASS: TestLVM/plain (0.40s)\r\n" +
		"=== RUN   TestAIO\r\n" +
		"    aio_test.go:9: needs native AIO: io_setup: function not implemented\r\n" +
		"--- SKIP: TestAIO (0.00s)\r\n" +
		"=== RUN   TestQuiet\r\n" +
		"--- SKIP: TestQuiet (0.00s)\r\n" +
		"PASS\r\n"
	got := guestSkips(console)
	want := []skip{
		{"TestLVM/thin", "needs thin_check on PATH"},
		{"TestAIO", "needs native AIO: io_setup: function not implemented"},
		{"TestQuiet", "(no reason given)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guestSkips = %q\nwant %q", got, want)
	}
}
