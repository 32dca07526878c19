package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/snapshot"
	"github.com/blkpipe/blkpipe/internal/testenv/qemutest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// The LVM tests boot a QEMU guest (internal/testenv/qemutest) and run there: LVM
// is never touched on the host. Disks of TestLVM, in guest order:
const (
	diskPV     = "/dev/vda" // the volume group vg
	diskOld    = "/dev/vdb" // pattern 'A': the origin's content at first
	diskNew    = "/dev/vdc" // pattern 'B': what the writer writes
	diskCopy1  = "/dev/vdd" // the copy run makes while the writer runs
	diskCopy2  = "/dev/vde" // a second read of the same snapshot, later
	diskOrigin = "/dev/vdf" // the origin after the writer finished
)

var snapName = regexp.MustCompile(`^/dev/vg/data_snapctl_[0-9]{8}T[0-9]{6}(_[0-9]+)?\n$`)

func TestLVM(t *testing.T) {
	if qemutest.InGuest() {
		guestLVM(t)
		return
	}
	qemutest.NeedQEMU(t)
	a, b := pattern('A', dataSize), pattern('B', dataSize)
	disks := []string{
		diskWith(t, 192<<20, nil), diskWith(t, dataSize, a), diskWith(t, dataSize, b),
		diskWith(t, dataSize, nil), diskWith(t, dataSize, nil), diskWith(t, dataSize, nil),
	}
	qemutest.RunTest(t, qemutest.Config{
		Disks: disks,
		Files: guestTools(t),
	})
	// The copy made by `snapctl run` while the origin was being written
	// is one point in time, and the same as a later read of the snapshot.
	copy1, copy2 := readDisk(t, disks[3], dataSize), readDisk(t, disks[4], dataSize)
	if !bytes.Equal(copy1, copy2) {
		t.Fatal("two reads of the snapshot differ: it changed while the origin was written")
	}
	k := checkPointInTime(t, copy1, a, b)
	if k == 0 || k == dataSize/blockSize {
		t.Errorf("snapshot taken with %d of %d blocks rewritten: not while the origin was being written", k, dataSize/blockSize)
	}
	t.Logf("snapshot taken after %d of %d blocks were rewritten", k, dataSize/blockSize)
	if !bytes.Equal(readDisk(t, disks[5], dataSize), b) {
		t.Error("the origin does not hold all the writer wrote")
	}
}

func guestLVM(t *testing.T) {
	sh(t, "pvcreate -q -y "+diskPV+" && vgcreate -q vg "+diskPV+" && lvcreate -q -y -L 16M -n data vg")
	sh(t, "dd if="+diskOld+" of=/dev/vg/data bs=1M conv=fsync 2>/dev/null")

	t.Run("classic", func(t *testing.T) {
		out, _ := expect(t, 0, nil, "create", "--size", "8M", "/dev/vg/data")
		if !snapName.MatchString(out) {
			t.Fatalf("create printed %q", out)
		}
		path := strings.TrimSpace(out)
		name := strings.TrimPrefix(path, "/dev/vg/")
		if got := sh(t, "lvs --noheadings -o lv_attr,lv_tags,lv_size --units m vg/"+name); !regexp.MustCompile(`^\s*swi-a-s---\s+snapctl\s+8\.00m\s*$`).MatchString(got) {
			t.Errorf("lvs shows %q, want an active 8M snapshot tagged snapctl", got)
		}
		list, _ := expect(t, 0, nil, "list")
		if !regexp.MustCompile(`(?m)^` + path + `\s+lvm\s+vg/data\s+\d+s\s+0\.0%\s+-$`).MatchString(list) {
			t.Errorf("list shows:\n%s", list)
		}
		js, _ := expect(t, 0, nil, "list", "--json")
		var all []snapshot.Snapshot
		if err := json.Unmarshal([]byte(js), &all); err != nil || len(all) != 1 || all[0].Path != path || all[0].Size != 8<<20 || all[0].Backend != snapshot.LVM {
			t.Errorf("list --json: %v %+v", err, all)
		}
		expect(t, 0, nil, "remove", path)
		if got := lvNames(t); got != "data" {
			t.Errorf("after remove, vg holds %s", got)
		}
	})

	t.Run("run", func(t *testing.T) {
		expect(t, 0, nil, "run", "--size", "8M", "/dev/vg/data", "--", "sh", "-c", `test -b "$SNAP" && test "$1" = "$SNAP" && cmp -n 1048576 "$SNAP" `+diskOld, "sh", "{}")
		noSnapshotsLeft(t)
		expect(t, 3, nil, "run", "--size", "8M", "/dev/vg/data", "--", "sh", "-c", "exit 3")
		noSnapshotsLeft(t)
		// SIGTERM to snapctl while CMD runs.
		started := "/tmp/run-started"
		c := exec.Command(snapctlBin(t), "run", "--size", "8M", "/dev/vg/data", "--", "sh", "-c", "touch "+started+"; sleep 60")
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitFile(t, started, time.Minute)
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
		if code := c.ProcessState.ExitCode(); code != 130 || !strings.Contains(stderr.String(), "interrupted by terminated") {
			t.Errorf("SIGTERM: exit %d, stderr %q", code, stderr.String())
		}
		noSnapshotsLeft(t)
	})

	t.Run("errors", func(t *testing.T) {
		// Each error leaves the volume group as it was.
		expect(t, 0, nil, "create", "--size", "4M", "--name", "taken", "/dev/vg/data")
		before := lvNames(t)
		for _, tc := range []struct {
			name string
			args []string
			msg  string
		}{
			{"origin not found", []string{"create", "/dev/vg/nope"}, "snapctl: create /dev/vg/nope: /dev/vg/nope: origin not found\n"},
			{"vg/lv not found", []string{"create", "vg/nope"}, "snapctl: create vg/nope: vg/nope: origin not found\n"},
			{"name exists", []string{"create", "--size", "4M", "--name", "taken", "/dev/vg/data"}, "snapctl: create /dev/vg/data: logical volume vg/taken: name already exists\n"},
			{"origin is a snapshot", []string{"create", "/dev/vg/taken"}, "snapctl: create /dev/vg/taken: vg/taken is a snapshot of data: origin is itself a snapshot; snapshot the origin instead\n"},
			{"not an LV", []string{"create", diskOrigin}, "snapctl: create " + diskOrigin + ": " + diskOrigin + " is not an LVM logical volume: no snapshot backend for this origin\n"},
			{"too big", []string{"create", "--size", "1G", "/dev/vg/data"}, "a COW snapshot of data needs 1.0 GiB: not enough free space in the volume group; use a smaller --size"},
			{"thin backend on linear", []string{"create", "--backend", "lvm-thin", "/dev/vg/data"}, "backend lvm-thin: vg/data is linear, not a thin volume"},
			{"remove foreign", []string{"remove", "/dev/vg/data"}, `snapctl: remove /dev/vg/data: vg/data has no "snapctl" tag: not a snapshot made by snapctl` + "\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errOut := snapctl(t, tc.args...)
				if code != 1 || out != "" || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", code, out, errOut, tc.msg)
				}
				if after := lvNames(t); after != before {
					t.Errorf("volumes changed: %s -> %s", before, after)
				}
			})
		}
		// A volume group without free space.
		sh(t, "lvcreate -q -y -l 100%FREE -n filler vg")
		before = lvNames(t)
		code, _, errOut := snapctl(t, "create", "/dev/vg/data")
		if want := "snapctl: create /dev/vg/data: volume group vg has no free space for a COW snapshot of data: not enough free space in the volume group; free some, add a physical volume, or use a thin volume; " +
			"snapctl's snapshot /dev/vg/taken (made "; code != 1 || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, " ago) takes space in it: snapctl remove it if no copy reads it any more, and run snapctl gc --older-than D from cron\n") {
			t.Errorf("full VG: exit %d, stderr %q; want 1, %q", code, errOut, want)
		}
		if after := lvNames(t); after != before {
			t.Errorf("volumes changed: %s -> %s", before, after)
		}
		sh(t, "lvremove -q -y vg/filler")
		expect(t, 0, nil, "remove", "/dev/vg/taken")
	})

	t.Run("copy while writing", func(t *testing.T) {
		// Done criterion of the issue: `snapctl run` copies a snapshot
		// taken while the origin is being written, with the recipe's
		// blkcat | blkwrite (no ssh); the host compares.
		newData := make([]byte, dataSize)
		f, err := os.Open(diskNew)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(f, newData); err != nil {
			t.Fatal(err)
		}
		f.Close()
		progress := make(chan int, 1)
		gate := &snapGate{origin: "data", chunks: dataSize / chunk}
		done := gatedWriter("/dev/vg/data", newData, 20*time.Millisecond, progress, gate.before)
		for n := 0; n < 16; n = <-progress {
		}
		go func() {
			err := <-done
			os.WriteFile("/tmp/writer-done", []byte(errString(err)), 0o644)
		}()
		expect(t, 0, nil, "run", "--size", "24M", "/dev/vg/data", "--", "sh", "-c",
			`blkcat -q "$SNAP" | blkwrite -q `+diskCopy1+` && while [ ! -e /tmp/writer-done ]; do sleep 0.2; done && dd if={} of=`+diskCopy2+` bs=1M conv=fsync 2>/dev/null`)
		gate.release()
		if b, _ := os.ReadFile("/tmp/writer-done"); len(b) != 0 {
			t.Fatalf("writer: %s", b)
		}
		noSnapshotsLeft(t)
		sh(t, "dd if=/dev/vg/data of="+diskOrigin+" bs=1M conv=fsync 2>/dev/null")
	})

	t.Run("max-fill", func(t *testing.T) {
		// The origin changes more than an 8 MiB snapshot holds while CMD
		// copies it (over and over): run warns at --warn, then stops CMD
		// at --max-fill, removes the snapshot and exits 75.
		pidFile := "/tmp/maxfill-pid"
		start := time.Now()
		stderr, wait := startSnapctl("run", "--size", "8M", "--interval", "300ms", "--warn", "30", "--max-fill", "50", "/dev/vg/data", "--",
			"sh", "-c", "echo $$ > "+pidFile+".tmp; mv "+pidFile+".tmp "+pidFile+`; while :; do blkcat -q "$SNAP" >/dev/null || exit 9; sleep 0.5; done`)
		waitFile(t, pidFile, time.Minute)
		data := bytes.Repeat([]byte{'m'}, 6<<20)
		if err := <-writer("/dev/vg/data", data[:3<<20], 0, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, stderr, "(--warn 30%); at 50% the command is stopped\n", time.Minute)
		if err := <-writer("/dev/vg/data", data, 0, nil); err != nil {
			t.Fatal(err)
		}
		if code := wait(); code != 75 {
			t.Fatalf("exit %d, want 75; stderr:\n%s", code, stderr)
		}
		if d := time.Since(start); d > 100*time.Second {
			t.Errorf("run took %v: CMD was not stopped", d)
		}
		errOut := stderr.String()
		if !regexp.MustCompile(`snapctl: warning: snapshot vg/data_snapctl_\S+ is [3-4][0-9]\.[0-9]% full \(--warn 30%\)`).MatchString(errOut) ||
			!regexp.MustCompile(`snapctl: run: snapshot vg/data_snapctl_\S+ is [5-9][0-9]\.[0-9]% full \(--max-fill 50%\): snapshot filled up; stopped CMD and removed the snapshot, so its copy is incomplete. The origin changed more than the snapshot could hold: retry with a bigger --size \(or --extend\), a thin volume, or at a quieter time\n$`).MatchString(errOut) {
			t.Errorf("stderr does not say how full, or what to do:\n%s", errOut)
		}
		pid, _ := os.ReadFile(pidFile)
		if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err == nil {
			t.Errorf("CMD (pid %s) still running", pid)
		}
		noSnapshotsLeft(t)
	})

	t.Run("extend", func(t *testing.T) {
		// With --extend the snapshot grows instead: 8 MiB by half, to
		// 12 MiB; the run succeeds.
		stderr, wait := startSnapctl("run", "--size", "8M", "--interval", "300ms", "--warn", "30", "--max-fill", "90", "--extend", "/dev/vg/data", "--",
			"sh", "-c", "touch /tmp/extend-started; while [ ! -e /tmp/extend-done ]; do sleep 0.2; done")
		waitFile(t, "/tmp/extend-started", time.Minute)
		data := bytes.Repeat([]byte{'e'}, 6<<20)
		if err := <-writer("/dev/vg/data", data[:3<<20], 0, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, stderr, "% full: grew it by 4.0 MiB\n", time.Minute)
		if err := <-writer("/dev/vg/data", data, 0, nil); err != nil {
			t.Fatal(err)
		}
		os.WriteFile("/tmp/extend-done", nil, 0o644)
		if code := wait(); code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		t.Logf("stderr:\n%s", stderr)
		noSnapshotsLeft(t)
	})

	t.Run("invalid", func(t *testing.T) {
		out, _ := expect(t, 0, nil, "create", "--size", "4M", "/dev/vg/data")
		path := strings.TrimSpace(out)
		sh(t, "dd if="+diskNew+" of=/dev/vg/data bs=1M count=8 conv=fsync 2>/dev/null")
		list, _ := expect(t, 0, nil, "list")
		if !regexp.MustCompile(`(?m)^` + path + `\s+lvm\s+vg/data\s+\d+s\s+INVALID\s+-$`).MatchString(list) {
			t.Errorf("list does not show the snapshot invalid:\n%s", list)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Read(make([]byte, 4096))
		f.Close()
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("read of an invalid snapshot: %v, want EIO", err)
		}
		expect(t, 0, nil, "remove", path)

		// CMD overflows the snapshot, its read fails: reported as the
		// snapshot's overflow (75), not as CMD's failure.
		invalidMsg := "snapshot is invalid (it overflowed); stopped CMD and removed the snapshot"
		expect(t, 75, []string{invalidMsg}, "run", "--size", "4M", "--interval", "1h", "/dev/vg/data", "--", "sh", "-c",
			"dd if="+diskOld+" of=/dev/vg/data bs=1M count=8 conv=fsync 2>/dev/null; dd if=$SNAP of=/dev/null bs=1M")
		noSnapshotsLeft(t)
		// The watcher sees it go invalid while CMD still runs.
		start := time.Now()
		expect(t, 75, []string{invalidMsg}, "run", "--size", "4M", "--interval", "300ms", "--max-fill", "100", "/dev/vg/data", "--", "sh", "-c",
			"dd if="+diskNew+" of=/dev/vg/data bs=1M count=8 conv=fsync 2>/dev/null; sleep 120")
		if d := time.Since(start); d > 100*time.Second {
			t.Errorf("run took %v: CMD was not stopped", d)
		}
		noSnapshotsLeft(t)
	})

	t.Run("gc", func(t *testing.T) {
		sh(t, "lvcreate -q -s -L 4M -n foreign vg/data")
		var made []string
		for i := 0; i < 2; i++ {
			out, _ := expect(t, 0, nil, "create", "--size", "4M", "/dev/vg/data")
			made = append(made, strings.TrimSpace(out))
		}
		if out, _ := expect(t, 0, nil, "gc", "--older-than", "1h"); out != "" {
			t.Errorf("gc --older-than 1h removed: %s", out)
		}
		time.Sleep(2 * time.Second)
		out, _ := expect(t, 0, nil, "gc", "--older-than", "1s")
		if want := "removed " + made[0] + "\nremoved " + made[1] + "\n"; out != want && out != "removed "+made[1]+"\nremoved "+made[0]+"\n" {
			t.Errorf("gc printed %q, want %q", out, want)
		}
		if got := lvNames(t); got != "data foreign" {
			t.Errorf("after gc vg holds %s, want data and the foreign snapshot", got)
		}
		sh(t, "lvremove -q -y vg/foreign")
	})

	t.Run("remove busy", func(t *testing.T) {
		out, _ := expect(t, 0, nil, "create", "--size", "4M", "/dev/vg/data")
		path := strings.TrimSpace(out)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		holder := exec.Command("sleep", "60")
		holder.Stdin = f
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		defer holder.Process.Kill()
		pid := strconv.Itoa(holder.Process.Pid)
		expect(t, 1, []string{"snapctl: remove " + path + ": still in use after ", " tries in 1s: pid " + pid + " (sleep)\n"},
			"remove", "--timeout", "1s", path)
		// The holder lets go once remove has failed at least once
		// (an lvremove that exited non-zero): remove retries and
		// succeeds.
		log := cmdLog(t, "lvremove")
		go func() {
			defer holder.Wait()
			defer holder.Process.Kill()
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if b, _ := os.ReadFile(log); regexp.MustCompile(`(?m)^[1-9]`).Match(b) {
					return
				}
			}
			t.Errorf("remove never tried lvremove while %s was held", path)
		}()
		expect(t, 0, nil, "remove", "--timeout", "30s", path)
		if b, _ := os.ReadFile(log); !regexp.MustCompile(`(?ms)^[1-9].*^0 `).Match(b) {
			t.Errorf("lvremove calls (status, arguments):\n%s\nwant a failed one, then one that succeeded", b)
		}
		noSnapshotsLeft(t)
	})
}

// cmdLog puts a command name first on PATH, for the rest of the test,
// that runs the real one and appends "STATUS ARGS" to the file it returns.
func cmdLog(t *testing.T, name string) string {
	t.Helper()
	real, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, name+".log")
	script := fmt.Sprintf("#!/bin/sh\n%s \"$@\"\nrc=$?\necho \"$rc $*\" >> %s\nexit $rc\n", real, log)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return log
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Disks of TestLVMThin, in guest order.
const (
	thinPV   = "/dev/vda"
	thinOld  = "/dev/vdb"
	thinNew  = "/dev/vdc"
	thinCopy = "/dev/vdd"
)

func TestLVMThin(t *testing.T) {
	if qemutest.InGuest() {
		guestThin(t)
		return
	}
	qemutest.NeedQEMU(t)
	a, b := pattern('A', dataSize), pattern('B', dataSize)
	disks := []string{diskWith(t, 192<<20, nil), diskWith(t, dataSize, a), diskWith(t, dataSize, b), diskWith(t, dataSize, nil)}
	qemutest.RunTest(t, qemutest.Config{
		Disks: disks,
		Files: guestTools(t),
	})
	k := checkPointInTime(t, readDisk(t, disks[3], dataSize), a, b)
	if k == 0 || k == dataSize/blockSize {
		t.Errorf("thin snapshot taken with %d of %d blocks rewritten: not while the origin was being written", k, dataSize/blockSize)
	}
	t.Logf("thin snapshot taken after %d of %d blocks were rewritten", k, dataSize/blockSize)
}

func guestThin(t *testing.T) {
	testutil.NeedCmd(t, "lvs")
	sh(t, "pvcreate -q -y "+thinPV+" && vgcreate -q vg "+thinPV+" && lvcreate -q -y -L 48M -T vg/pool && lvcreate -q -y -V 16M -T vg/pool -n thin")
	sh(t, "dd if="+thinOld+" of=/dev/vg/thin bs=1M conv=fsync 2>/dev/null")

	t.Run("create list remove", func(t *testing.T) {
		out, _ := expect(t, 0, nil, "create", "/dev/vg/thin")
		path := strings.TrimSpace(out)
		if !regexp.MustCompile(`^/dev/vg/thin_snapctl_[0-9T]{15}$`).MatchString(path) {
			t.Fatalf("create printed %q", out)
		}
		// Active despite thin snapshots' activation skip, and readable.
		sh(t, "cmp -n 4194304 "+path+" "+thinOld)
		list, _ := expect(t, 0, nil, "list")
		if !regexp.MustCompile(`(?m)^` + path + `\s+lvm-thin\s+vg/thin\s+\d+s\s+pool \d+\.\d%\s+-$`).MatchString(list) {
			t.Errorf("list shows:\n%s", list)
		}
		// A thin snapshot of a thin snapshot is refused; so is --size.
		code, _, errOut := snapctl(t, "create", path)
		if code != 1 || !strings.Contains(errOut, "is a snapshot of thin: origin is itself a snapshot") {
			t.Errorf("snapshot of a snapshot: exit %d, %q", code, errOut)
		}
		code, _, errOut = snapctl(t, "create", "--size", "8M", "/dev/vg/thin")
		if code != 1 || !strings.Contains(errOut, "--size does not apply to a thin snapshot (it draws on the pool pool)") {
			t.Errorf("--size on thin: exit %d, %q", code, errOut)
		}
		expect(t, 0, nil, "remove", path)
		noSnapshotsLeft(t)
	})

	t.Run("run copy while writing", func(t *testing.T) {
		newData := make([]byte, dataSize)
		f, err := os.Open(thinNew)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(f, newData); err != nil {
			t.Fatal(err)
		}
		f.Close()
		progress := make(chan int, 1)
		gate := &snapGate{origin: "thin", chunks: dataSize / chunk}
		done := gatedWriter("/dev/vg/thin", newData, 20*time.Millisecond, progress, gate.before)
		for n := 0; n < 16; n = <-progress {
		}
		expect(t, 0, nil, "run", "/dev/vg/thin", "--", "sh", "-c", `blkcat -q "$SNAP" | blkwrite -q `+thinCopy)
		gate.release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		noSnapshotsLeft(t)
		// Failing command and SIGTERM leave nothing behind either.
		expect(t, 4, nil, "run", "/dev/vg/thin", "--", "sh", "-c", "exit 4")
		noSnapshotsLeft(t)
	})

	t.Run("pool max-fill", func(t *testing.T) {
		// The pool holds the origin's 16 MiB of 48; writing 16 MiB more
		// to the origin while the snapshot shares the old blocks pushes
		// its data past 55 %.
		go func() {
			waitFile(t, "/tmp/thin-started", time.Minute)
			<-writer("/dev/vg/thin", bytes.Repeat([]byte{'t'}, 16<<20), 0, nil)
		}()
		expect(t, 75, []string{"thin pool vg/pool of snapshot vg/thin_snapctl_", "% full (--max-fill 55%): snapshot filled up; stopped CMD"},
			"run", "--interval", "300ms", "--warn", "50", "--max-fill", "55", "/dev/vg/thin", "--", "sh", "-c", "touch /tmp/thin-started; sleep 120")
		noSnapshotsLeft(t)
	})

	t.Run("gc", func(t *testing.T) {
		out, _ := expect(t, 0, nil, "create", "/dev/vg/thin")
		time.Sleep(1100 * time.Millisecond)
		got, _ := expect(t, 0, nil, "gc", "--older-than", "1s")
		if got != "removed "+out {
			t.Errorf("gc printed %q, want removed %s", got, out)
		}
		noSnapshotsLeft(t)
	})
}

// TestLVMEdges: a snapshot that went invalid while CMD ran fails the run
// even though CMD exited 0 (a pipeline without pipefail hides the reader's
// EIO); a create whose name another snapctl took meanwhile fails without
// removing the other's snapshot; gc spares the snapshot of a run still
// going; a snapshot left behind by a crashed run is pointed out.
func TestLVMEdges(t *testing.T) {
	if qemutest.InGuest() {
		guestEdges(t)
		return
	}
	qemutest.NeedQEMU(t)
	qemutest.RunTest(t, qemutest.Config{
		Disks: []string{diskWith(t, 64<<20, nil)},
		Files: guestTools(t),
	})
}

func guestEdges(t *testing.T) {
	sh(t, "pvcreate -q -y /dev/vda && vgcreate -q vg /dev/vda && lvcreate -q -y -L 16M -n data vg")

	t.Run("invalid, CMD exits 0", func(t *testing.T) {
		// --interval 1h: the watcher polls once, at the start, and
		// CMD overflows the snapshot only once that poll has seen it
		// valid, so the overflow is found by run's check after CMD,
		// not by the watcher. The poll is seen through an lvs on PATH
		// that logs each call's status and arguments: the watcher's is
		// the first lvs of the snapshot that succeeds (create's only
		// asks whether the name is free).
		log := cmdLog(t, "lvs")
		expect(t, 75, []string{"snapshot is invalid (it overflowed)", "retry with a bigger --size"},
			"run", "--size", "4M", "--interval", "1h", "/dev/vg/data", "--", "sh", "-c",
			`n=0; until grep -q "^0 .* vg/${SNAP##*/}\$" `+log+`; do n=$((n+1)); [ $n -lt 600 ] || { echo the watcher never polled >&2; exit 9; }; sleep 0.1; done
dd if=/dev/zero of=/dev/vg/data bs=1M count=8 conv=fsync 2>/dev/null; blkcat -q "$SNAP" | cat >/dev/null`)
		noSnapshotsLeft(t)
	})

	t.Run("name taken meanwhile", func(t *testing.T) {
		// The first create waits in --pre until the second has made
		// the snapshot of the same name.
		stderr, wait := startSnapctl("create", "--size", "4M", "--name", "race", "--pre",
			"touch /tmp/race-pre; while [ ! -e /tmp/race-made ]; do sleep 0.1; done", "/dev/vg/data")
		waitFile(t, "/tmp/race-pre", time.Minute)
		out, _ := expect(t, 0, nil, "create", "--size", "4M", "--name", "race", "/dev/vg/data")
		os.WriteFile("/tmp/race-made", nil, 0o644)
		if code := wait(); code != 1 || stderr.String() != "snapctl: create /dev/vg/data: logical volume vg/race: name already exists\n" {
			t.Errorf("create of a name taken meanwhile: exit %d, stderr %q", code, stderr)
		}
		if got := lvNames(t); got != "data race" {
			t.Errorf("vg holds %s, want data and the other create's snapshot", got)
		}
		expect(t, 0, nil, "remove", strings.TrimSpace(out))
		noSnapshotsLeft(t)
	})

	t.Run("gc spares a running run", func(t *testing.T) {
		// The copy outlasts gc's --older-than: gc keeps its snapshot.
		stderr, wait := startSnapctl("run", "--size", "4M", "/dev/vg/data", "--", "sh", "-c",
			`touch /tmp/gcrun-started; while [ ! -e /tmp/gcrun-release ]; do sleep 0.1; done; blkcat -q "$SNAP" >/dev/null`)
		waitFile(t, "/tmp/gcrun-started", time.Minute)
		code, out, errOut := snapctl(t, "gc", "--older-than", "0s")
		if want := regexp.MustCompile(`^snapctl: gc: kept /dev/vg/data_snapctl_\S+: snapctl run \(pid ` + strconv.Itoa(os.Getpid()) + `\) still uses it\n$`); code != 0 || out != "" || !want.MatchString(errOut) {
			t.Errorf("gc during the run: exit %d, stdout %q, stderr %q; want 0, nothing removed, %s", code, out, errOut, want)
		}
		os.WriteFile("/tmp/gcrun-release", nil, 0o644)
		if code := wait(); code != 0 {
			t.Errorf("run: exit %d, stderr %q", code, stderr)
		}
		noSnapshotsLeft(t)
	})

	t.Run("remove missing", func(t *testing.T) {
		// A snapshot, not an origin, is what is missing.
		for _, p := range []string{"vg/nope", "novg/nope"} {
			expect(t, 1, []string{"snapctl: remove " + p + ": no such logical volume\n"}, "remove", p)
		}
	})

	t.Run("leftover", func(t *testing.T) {
		// A run that died (kill -9, a crash) left its snapshot, which
		// took the volume group's free space (--size 100%FREE; LVM
		// caps that at the origin's size, so leave less free).
		sh(t, "lvcreate -q -y -L 36M -n filler vg")
		out, _ := expect(t, 0, nil, "create", "/dev/vg/data")
		left := strings.TrimSpace(out)
		code, _, errOut := snapctl(t, "run", "/dev/vg/data", "--", "true")
		if want := regexp.MustCompile(`^snapctl: run: create /dev/vg/data: volume group vg has no free space for a COW snapshot of data: ` +
			`not enough free space in the volume group; free some, add a physical volume, or use a thin volume; snapctl's snapshot ` + left + ` \(made \d+s ago\) takes space in it: ` +
			`snapctl remove it if no copy reads it any more, and run snapctl gc --older-than D from cron\n$`); code != 125 || !want.MatchString(errOut) {
			t.Errorf("run with a leftover holding the space: exit %d, stderr %q; want 125 and %s", code, errOut, want)
		}
		// With room left, the run works and says the leftover is there.
		expect(t, 0, nil, "remove", left)
		out, _ = expect(t, 0, nil, "create", "--size", "4M", "/dev/vg/data")
		left = strings.TrimSpace(out)
		_, errOut = expect(t, 0, nil, "run", "--size", "4M", "/dev/vg/data", "--", "true")
		if want := regexp.MustCompile(`^snapctl: warning: an earlier snapshot of vg/data is still there: ` + left + ` \(made \d+s ago\); ` +
			`until it is removed it takes space and slows every write to vg/data: snapctl remove it if no copy reads it any more, and run snapctl gc --older-than D from cron\n$`); !want.MatchString(errOut) {
			t.Errorf("run with a leftover: stderr %q, want %s", errOut, want)
		}
		expect(t, 0, nil, "remove", left)
		noSnapshotsLeft(t)
		sh(t, "lvremove -q -y vg/filler")
	})
}
