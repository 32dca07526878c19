package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestKeepLVM is TestKeepVersions on a thin and a classic logical volume,
// in a QEMU guest (LVM is never touched on the host). It also logs the
// thin pool's usage after every nightly run: versions there cost only the
// blocks a refresh changed.
func TestKeepLVM(t *testing.T) {
	if !qemutest.InGuest() {
		testutil.NeedCmd(t, "b3sum", "bash")
		qemutest.RunTest(t, qemutest.Config{
			Disks: []string{testutil.SparseFile(t, 512<<20)},
			Files: map[string]string{
				"/usr/bin/blkcat": testutil.Tool(t, "blkcat"), "/usr/bin/blkwrite": testutil.Tool(t, "blkwrite"),
				"/usr/bin/snapctl": testutil.Tool(t, "snapctl"), "/usr/bin/b3sum": "/usr/bin/b3sum",
			},
			MemoryMiB: 1024,
			Timeout:   25 * time.Minute, // TCG: the guest is slow
		})
		return
	}
	lvmSh(t, "pvcreate -q -y /dev/vda && vgcreate -q vg /dev/vda")
	tools := keepSetup{shell: "sh", size: 4 << 20, blkcat: "/usr/bin/blkcat", blkwrite: "/usr/bin/blkwrite", snapctl: "/usr/bin/snapctl"}
	merge := func(lv string) func(t *testing.T, version string) {
		return func(t *testing.T, version string) {
			// A merge into an active origin waits for its next
			// activation.
			lvmSh(t, "lvconvert -q --merge "+strings.TrimPrefix(version, "/dev/")+" && lvchange -an vg/"+lv+" && lvchange -ay vg/"+lv)
		}
	}
	t.Run("thin", func(t *testing.T) {
		lvmSh(t, "lvcreate -q -y -L 192M -T vg/pool && lvcreate -q -y -V 4M -T vg/pool -n thin")
		k := tools
		k.target, k.useVersion = "/dev/vg/thin", merge("thin")
		k.afterRun = func(t *testing.T, n int) {
			t.Logf("after refresh %d: %s", n, strings.Join(strings.Fields(lvmSh(t, "lvs --noheadings -o lv_name,data_percent vg/pool")), " "))
		}
		keepVersions(t, k)
	})
	t.Run("thin-space", func(t *testing.T) {
		// Seven nightly delta refreshes at 1 % churn with --keep 7: the
		// pool grows by the changed blocks (rounded up to the pool's
		// 64 KiB chunks), not by a volume per version.
		const size = 64 << 20
		lvmSh(t, "lvcreate -q -y -V 64M -T vg/pool -n space")
		dir := t.TempDir()
		src := dir + "/src"
		gen := randomBytes(size, 70)
		pool := func() string {
			return strings.Join(strings.Fields(lvmSh(t, "lvs --noheadings --units m -o lv_name,lv_size,data_percent vg/pool")), " ")
		}
		t.Logf("empty volume: %s", pool())
		for n := 0; n <= 7; n++ {
			if n > 0 {
				gen = churnBytes(gen, 1, uint64(70+n))
			}
			writeFile(t, src, gen)
			script := `$BC --frame "$SRC" | $BW --keep 7 /dev/vg/space`
			if n > 0 {
				script = `$BC --sums /dev/vg/space > "$SRC.sums" && $BC --against "$SRC.sums" "$SRC" | $BW --keep 7 /dev/vg/space`
			}
			if _, stderr, code := tools.sh(t, []string{"SRC=" + src}, script); code != 0 {
				t.Fatalf("run %d: exit %d: %s", n, code, stderr)
			}
			t.Logf("after night %d (%d versions kept): %s", n, len(versionPaths(t, tools.blkwrite, "/dev/vg/space")), pool())
		}
	})
	t.Run("classic", func(t *testing.T) {
		lvmSh(t, "lvcreate -q -y -L 4M -n classic vg")
		k := tools
		k.target, k.useVersion = "/dev/vg/classic", merge("classic")
		keepVersions(t, k)
	})
}

// lvmSh runs a shell command in the guest and fails the test on error.
func lvmSh(tb testing.TB, script string) string {
	tb.Helper()
	return testutil.Run(tb, "sh", "-c", script)
}
