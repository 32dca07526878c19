package ddtool_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// The read-error device: a disk of errDisk bytes mapped through
// device-mapper with one 4 KiB block, at errBad, that fails with EIO. It
// lies in the second 4 MiB chunk, so the chunk's read (native AIO, or the
// pread fallback) fails and blkcat goes on record by record as dd does.
const (
	errDisk = 12 << 20
	errBad  = 5<<20 + 8192
	errDev  = "/dev/mapper/bad"
)

// TestReadErrors reads a device with a bad block, in a QEMU guest (the
// host kernel here has no device-mapper): without conv=noerror blkcat
// stops at the bad block with dd's message and exit status 1, having
// written every whole record before it; with conv=noerror,sync it says so
// and goes on, writes zeros for the bad block and everything else as it
// is, and exits 0, as GNU dd does (it fails only when it cannot seek past
// the bad block). Both with native AIO and with BLKPIPE_AIO=0.
func TestReadErrors(t *testing.T) {
	if qemutest.InGuest() {
		guestReadErrors(t)
		return
	}
	qemutest.NeedQEMU(t)
	disk := testutil.SparseFile(t, errDisk)
	writeFile(t, disk, randomBytes(errDisk, 'E'))
	qemutest.RunTest(t, qemutest.Config{
		Disks: []string{disk},
		Files: map[string]string{"/bin/blkcat": testutil.Tool(t, "blkcat")},
	})
}

// badDevice maps errDev over the guest's /dev/vda with the bad block at
// errBad, removed at cleanup.
func badDevice(t *testing.T) {
	bad := errBad / 512
	table := fmt.Sprintf("0 %d linear /dev/vda 0\n%d 8 error\n%d %d linear /dev/vda %d\n",
		bad, bad, bad+8, errDisk/512-bad-8, bad+8)
	create := exec.Command("dmsetup", "create", "bad")
	create.Stdin = strings.NewReader(table)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("dmsetup create: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("dmsetup", "remove", "bad").Run() })
	// No udev in the guest: make the /dev/mapper node ourselves.
	if out, err := exec.Command("dmsetup", "mknodes", "bad").CombinedOutput(); err != nil {
		t.Fatalf("dmsetup mknodes: %v\n%s", err, out)
	}
}

func guestReadErrors(t *testing.T) {
	badDevice(t)
	data := randomBytes(errDisk, 'E')
	synced := bytes.Clone(data)
	clear(synced[errBad : errBad+4096])
	wantErr := "blkcat: error reading '" + errDev + "': Input/output error"
	for _, tc := range []struct {
		ops  string
		code int
		want []byte // nil: whatever the pread path gives, the same both ways
	}{
		{"bs=4096", 1, data[:errBad]},
		{"bs=4096 conv=noerror,sync", 0, synced},
		{"bs=64K conv=noerror", 0, nil},
	} {
		t.Run(tc.ops, func(t *testing.T) {
			var outs [2]string
			for i, aio := range []string{"0", ""} {
				cmd := exec.Command("/bin/blkcat", append([]string{"if=" + errDev}, strings.Fields(tc.ops)...)...)
				cmd.Env = append(os.Environ(), "BLKPIPE_AIO="+aio)
				out, stderr, code := runCmd(t, cmd)
				if code != tc.code {
					t.Errorf("BLKPIPE_AIO=%q: exit %d, want %d; stderr:\n%s", aio, code, tc.code, stderr)
				}
				if !strings.Contains(stderr, wantErr+"\n") {
					t.Errorf("BLKPIPE_AIO=%q: stderr lacks %q:\n%s", aio, wantErr, stderr)
				}
				if tc.want != nil && out != string(tc.want) {
					t.Errorf("BLKPIPE_AIO=%q: %d bytes out, want %d (first difference at %d)", aio, len(out), len(tc.want), testutil.FirstDiff([]byte(out), tc.want))
				}
				outs[i] = out
			}
			if outs[0] != outs[1] {
				t.Errorf("native AIO gave %d bytes, pread %d (first difference at %d)", len(outs[1]), len(outs[0]), testutil.FirstDiff([]byte(outs[1]), []byte(outs[0])))
			}
			if tc.want == nil && len(outs[0]) >= errDisk {
				t.Errorf("%d bytes out: the bad record was not left out", len(outs[0]))
			}
		})
	}
}

// TestReadErrorsAgainstDD reads the device with the bad block with GNU dd
// and blkcat, in the guest, and wants the same bytes, the same stderr
// (time and rate aside) and the same exit code, native AIO and pread alike.
// The statistics blkcat printed at each error with conv=noerror used to be
// those of its lagging writer ("0+0 records in") instead of dd's count
// before the failed read, and status=none did not silence the error. And
// it lost the good bytes of a record before its bad sector, which dd's
// read returns as a short read: bs=4M gave 1 MiB less, conv=noerror,sync
// zeros where dd has data.
func TestReadErrorsAgainstDD(t *testing.T) {
	if qemutest.InGuest() {
		guestReadErrorsAgainstDD(t)
		return
	}
	qemutest.NeedQEMU(t)
	testutil.NeedCmd(t, "dd")
	dd, _ := exec.LookPath("dd")
	disk := testutil.SparseFile(t, errDisk)
	writeFile(t, disk, randomBytes(errDisk, 'D'))
	qemutest.RunTest(t, qemutest.Config{
		Disks: []string{disk},
		Files: map[string]string{"/bin/blkcat": testutil.Tool(t, "blkcat"), "/bin/gnu-dd": dd},
	})
}

func guestReadErrorsAgainstDD(t *testing.T) {
	badDevice(t)
	for _, ops := range []string{
		"bs=4M",
		"bs=1M iflag=direct",
		"conv=noerror,sync",
		"bs=4096 conv=noerror",
		"bs=64K conv=noerror,sync",
		"bs=4M conv=noerror,sync",
		"bs=1M conv=noerror",
		"ibs=3000 obs=5000 conv=noerror,sync",
		"bs=1M iflag=direct conv=noerror,sync",
		"bs=64K conv=noerror,sync iflag=fullblock",
		"bs=64K conv=noerror,sync status=none",
	} {
		t.Run(ops, func(t *testing.T) {
			var want [3]string
			for i, prog := range []string{"/bin/gnu-dd", "/bin/blkcat", "/bin/blkcat"} {
				cmd := exec.Command(prog, append([]string{"if=" + errDev}, strings.Fields(ops)...)...)
				cmd.Env = append(os.Environ(), "BLKPIPE_AIO="+[]string{"", "", "0"}[i])
				out, stderr, code := runCmd(t, cmd)
				stderr = timeRE.ReplaceAllString(stderr, "copied, T")
				stderr = strings.NewReplacer("/bin/gnu-dd:", "PROG:", "blkcat:", "PROG:").Replace(stderr)
				got := [3]string{out, stderr, fmt.Sprint(code)}
				if i == 0 {
					want = got
					continue
				}
				if got[2] != want[2] || got[1] != want[1] {
					t.Errorf("%s (%s): exit %s, stderr:\n%s\nGNU dd: exit %s, stderr:\n%s", prog, cmd.Env[len(cmd.Env)-1], got[2], got[1], want[2], want[1])
				}
				if got[0] != want[0] {
					t.Errorf("%s (%s): %d bytes out, dd %d (first difference at %d)", prog, cmd.Env[len(cmd.Env)-1], len(got[0]), len(want[0]), testutil.FirstDiff([]byte(got[0]), []byte(want[0])))
				}
			}
		})
	}
}
