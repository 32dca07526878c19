package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"golang.org/x/sys/unix"
)

// Disks of TestChangedThinBench, in guest order.
const (
	benchPV   = "/dev/vda" // the volume group vg: a thin pool with 64 KiB chunks
	benchDst  = "/dev/vdb" // the changed-block copy
	benchSums = "/dev/vdc" // the sums-delta copy
	// benchMiBFile holds the thin volume's size in MiB, from the host's
	// BLKPIPE_THIN_BENCH_MIB.
	benchMiBFile = "/test/thin-bench-mib"
	// benchPrefix starts each figure line the guest prints, then the
	// line of this file that prints it and a tab; the host prints them
	// again on its stdout.
	benchPrefix = "THIN-BENCH "
)

// TestChangedThinBench is scripts/bench-changed-thin.sh: the changed-block
// benchmark of scripts/bench-changed.sh on a thin logical volume in a QEMU
// guest. A thin volume of random data gets a verified first copy on one
// disk and another; then 1 % of its 4 KiB blocks change, once scattered and
// once in 1 MiB runs, and each night is refreshed with
//
//	snapctl changes BASE NEW >L; blkcat --changed-from BASE --changes L -z lz4 NEW | blkwrite DST
//
// and, on the other copy, with the sums delta it replaces. It prints the
// bytes read from the snapshots and from the target against the 64 KiB
// leaves (the pool's chunks) the changes touch, the stream against the
// changed blocks, and the two walls' ratio (TCG: ratios only). Speed is
// never asserted; only the copies are checked. Runs only with
// BLKPIPE_THIN_BENCH=1.
func TestChangedThinBench(t *testing.T) {
	if qemutest.InGuest() {
		guestThinBench(t)
		return
	}
	if os.Getenv("BLKPIPE_THIN_BENCH") != "1" {
		t.Skip("a benchmark: run scripts/bench-changed-thin.sh (BLKPIPE_THIN_BENCH=1)")
	}
	qemutest.NeedQEMU(t)
	mib, _ := strconv.Atoi(os.Getenv("BLKPIPE_THIN_BENCH_MIB"))
	if mib <= 0 {
		mib = 256
	}
	size := int64(mib) << 20
	files := guestTools(t)
	mf := filepath.Join(t.TempDir(), "mib")
	if err := os.WriteFile(mf, []byte(strconv.Itoa(mib)), 0o644); err != nil {
		t.Fatal(err)
	}
	files[benchMiBFile] = mf
	res := qemutest.RunTest(t, qemutest.Config{
		// The pool holds the volume, its first snapshot's and two
		// nights' changed chunks, and its metadata.
		Disks:     []string{diskWith(t, 2*size+(128<<20), nil), diskWith(t, size, nil), diskWith(t, size, nil)},
		Files:     files,
		MemoryMiB: 1024,
		Timeout:   50 * time.Minute,
	})
	n := 0
	for _, l := range strings.Split(res.Console, "\n") {
		if i := strings.Index(l, benchPrefix); i >= 0 {
			fmt.Println(strings.TrimRight(l[i+len(benchPrefix):], "\r"))
			n++
		}
	}
	if n == 0 {
		t.Fatal("the guest printed no figures")
	}
}

func guestThinBench(t *testing.T) {
	b, err := os.ReadFile(benchMiBFile)
	if err != nil {
		t.Fatal(err)
	}
	mib, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(mib) << 20
	// The state directory lives in the guest's RAM: its reads are not
	// the disks'.
	os.Setenv("BLKPIPE_STATE_DIR", t.TempDir())
	tmp := t.TempDir()
	sh(t, fmt.Sprintf("pvcreate -q -y %s && vgcreate -q vg %s && lvcreate -q -y -L %dM -c 64k -T vg/pool && lvcreate -q -y -V %dM -T vg/pool -n thin",
		benchPV, benchPV, 2*mib+64, mib))
	fillRandom(t, "/dev/vg/thin", size)
	snap := func(name string) string {
		out, _ := expect(t, 0, nil, "create", "--name", name, "/dev/vg/thin")
		return strings.TrimSpace(out)
	}
	base := snap("b0")
	// Both copies verified, so blkwrite keeps their records and leaf
	// maps, as after a real first night; then BASE's leaf map and sums,
	// as the run that sent it keeps them (an empty change list).
	sh(t, "set -o pipefail; blkcat -q --frame "+base+" | blkwrite -q "+benchDst)
	sh(t, "set -o pipefail; blkcat -q --frame "+base+" | blkwrite -q "+benchSums)
	empty := filepath.Join(tmp, "empty")
	if err := os.WriteFile(empty, []byte("blkpipe-changes 1\nend 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "blkcat -q --changed-from "+base+" --changes "+empty+" "+base+" >/dev/null")
	list := filepath.Join(tmp, "list")
	// sameDisk fails the test unless a and b hold the same size bytes.
	sameDisk := func(a, b string) {
		t.Helper()
		if c, first := sshtest.Diff(t, a, b, size); c != 0 {
			t.Fatalf("%s differs from %s in %d bytes, the first at %d", b, a, c, first)
		}
	}
	for n, kind := range []string{"scattered", "runs"} {
		changed, leaves := churnThin(t, "/dev/vg/thin", size, kind)
		next := snap(fmt.Sprintf("b%d", n+1))
		devs := []string{devStat(t, base), devStat(t, next), devStat(t, benchPV), devStat(t, benchDst)}
		before := sectorsRead(t, devs)
		tc, out := timed(t, fmt.Sprintf("snapctl changes %s %s >%s && blkcat --changed-from %s --changes %s -z lz4 %s | blkwrite %s",
			base, next, list, base, list, next, benchDst))
		after := sectorsRead(t, devs)
		var listed, readSrc, wire, blocks int64
		i := strings.Index(out, "changed blocks: ")
		if i < 0 {
			t.Fatalf("no changed-blocks line:\n%s", out)
		}
		if _, err := fmt.Sscanf(out[i:], "changed blocks: listed %d bytes, read %d bytes, sent %d bytes (%d blocks", &listed, &readSrc, &wire, &blocks); err != nil {
			t.Fatalf("changed-blocks line: %v\n%s", err, out)
		}
		fromMap := 1
		if strings.Contains(out, "no valid digest map") {
			fromMap = 0
		}
		sameDisk(next, benchDst)
		ts, _ := timed(t, fmt.Sprintf("blkcat -q --sums %s | blkcat -q --against - -z lz4 %s | blkwrite -q %s", benchSums, next, benchSums))
		sameDisk(next, benchSums)
		rd := func(k int) float64 { return float64((after[k] - before[k]) * 512) }
		src := rd(0) + rd(1)
		what, goal := "scattered 4 KiB writes", 0.3
		if kind == "runs" {
			what, goal = "1 MiB runs", 0.1
		}
		// Each line carries the line of this file that printed it, for
		// scripts/bench.sh --report to cite.
		say := func(format string, a ...any) {
			_, _, line, _ := runtime.Caller(1)
			fmt.Printf("%s%d\t%s\n", benchPrefix, line, fmt.Sprintf(format, a...))
		}
		say("== thin LV in the guest (TCG: ratios only), 1 %% churn, %s, %d MiB volume, 64 KiB pool chunks", what, mib)
		say("changed %d bytes in %d 4 KiB blocks; leaves touched %d bytes; thin_delta listed %d bytes", changed, changed/4096, leaves, listed)
		say("changed / sums delta wall   %.3f×  (goal ≤ %g×; snapctl changes + blkcat | blkwrite vs blkcat --sums | blkcat --against | blkwrite)", tc/ts, goal)
		say("source read / leaves touched %.3f×  (goal ≤ 1.2×; stat of BASE's and NEW's dm devices; blkcat says it read %d bytes)", src/float64(leaves), readSrc)
		say("target read / leaves touched %.3f×  (goal ≤ 1.2×; stat of the target disk)", rd(3)/float64(leaves))
		say("  the pool's disk read / leaves touched %.3f×  (data and thin_delta's metadata reads)", rd(2)/float64(leaves))
		say("wire / changed blocks       %.3f×  (goal ≤ 1.1×)", float64(wire)/float64(changed))
		say("receiver verified from its leaf map: %d", fromMap)
		// The sums copy gets a verified copy of NEW, as the target has.
		sh(t, "set -o pipefail; blkcat -q --frame "+benchDst+" | blkwrite -q "+benchSums)
		base = next
	}
}

// fillRandom writes size random bytes to dev.
func fillRandom(t *testing.T, dev string, size int64) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{'T'})
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		r.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// churnThin rewrites 1 % of dev's 4 KiB blocks with random data, scattered
// ("scattered") or in 1 MiB runs ("runs"), as scripts/bench-changed.sh's
// churn does; it returns the changed bytes and the bytes of the 64 KiB
// leaves they touch.
func churnThin(t *testing.T, dev string, size int64, kind string) (changed, leaves int64) {
	t.Helper()
	blocks := int(size / 4096)
	n := blocks / 100
	var picks []int
	if kind == "scattered" {
		r := rand.New(rand.NewPCG(17, 1))
		picks = r.Perm(blocks)[:n]
	} else {
		r := rand.New(rand.NewPCG(18, 1))
		for _, s := range r.Perm(blocks/256 - 1)[:max(1, n/256)] {
			for i := range 256 {
				picks = append(picks, s*256+i)
			}
		}
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{byte(len(kind))})
	blk := make([]byte, 4096)
	touched := map[int]bool{}
	for _, b := range picks {
		r.Read(blk)
		if _, err := f.WriteAt(blk, int64(b)*4096); err != nil {
			t.Fatal(err)
		}
		touched[b/16] = true
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return int64(len(picks)) * 4096, int64(len(touched)) * 65536
}

// devStat is the /sys stat file of the block device at path, found by
// its device number (the guest has no udev: /dev/vg/x may be a node of
// its own, not a link to /dev/dm-N).
func devStat(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fmt.Sprintf("/sys/dev/block/%d:%d/stat", unix.Major(st.Rdev), unix.Minor(st.Rdev))
}

// sectorsRead returns the sectors each device has read (the third field
// of its stat file).
func sectorsRead(t *testing.T, stats []string) []int64 {
	t.Helper()
	out := make([]int64, len(stats))
	for i, n := range stats {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			t.Fatalf("%s: %q", n, b)
		}
		if out[i], err = strconv.ParseInt(f[2], 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// timed runs script with sh -o pipefail, caches dropped first, and returns
// its wall seconds and its stderr; it fails the test if the script fails.
func timed(t *testing.T, script string) (float64, string) {
	t.Helper()
	sh(t, "sync; echo 3 >/proc/sys/vm/drop_caches")
	var stderr bytes.Buffer
	c := exec.Command("sh", "-c", "set -o pipefail; "+script)
	c.Stderr = &stderr
	start := time.Now()
	err := c.Run()
	secs := time.Since(start).Seconds()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return secs, stderr.String()
}
