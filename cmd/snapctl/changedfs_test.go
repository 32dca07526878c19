package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/snapshot"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// Guest-side parts of TestChangedLVM beyond raw writes to the volumes: an
// ext4 filesystem mounted on each, a deleted file (on thin, trimmed: sent
// as ZERO records), a writer busy in it while the next night's snapshot
// is taken and sent, a base removed by hand, and a base record put back
// to an older snapshot.

// snapFile is where a night's CMD writes $SNAP, so the test can read the
// snapshot the night copied (kept as the lineage's base).
const snapFile = "/tmp/night-snap"

// nightOf runs one nightly copy of origin to dst with the shell script
// cmd as CMD and checks it: the copy equals the night's snapshot (read
// after the run, as the lineage's base), b3sum of the copy is the BLAKE3
// that blkwrite printed as verified, and that of the snapshot too; with
// idle (nothing writes origin) the copy also equals the origin. Stderr
// must contain want. It returns the output and the snapshot's bytes.
func nightOf(t *testing.T, lineage, origin, dst string, opts []string, cmd, want string, idle bool) (string, []byte) {
	t.Helper()
	args := append(append([]string{"run", "--keep-base", lineage}, opts...), origin, "--", "sh", "-c", `echo "$SNAP" > `+snapFile+"\n"+cmd)
	os.Remove(snapFile)
	out, err := exec.Command("/bin/snapctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("snapctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	p, err := os.ReadFile(snapFile)
	if err != nil {
		t.Fatalf("CMD did not say its snapshot: %v\n%s", err, out)
	}
	snap, got := readDisk(t, strings.TrimSpace(string(p)), changedSize), readDisk(t, dst, changedSize)
	if !bytes.Equal(snap, got) {
		t.Fatalf("the copy differs from the night's snapshot %s at byte %d:\n%s", p, testutil.FirstDiff(snap, got), out)
	}
	if idle {
		if src := readDisk(t, origin, changedSize); !bytes.Equal(src, got) {
			t.Fatalf("the copy differs from %s at byte %d:\n%s", origin, testutil.FirstDiff(src, got), out)
		}
	}
	root := digest.Sum256(snap)
	sum := hex.EncodeToString(root[:])
	if !strings.Contains(string(out), "verified blake3 "+sum) {
		t.Fatalf("blkwrite did not verify the snapshot's BLAKE3 %s:\n%s", sum, out)
	}
	if b3 := strings.TrimSpace(sh(t, "b3sum --no-names "+dst)); b3 != sum {
		t.Fatalf("b3sum %s = %s, blkwrite printed verified blake3 %s:\n%s", dst, b3, sum, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	return string(out), snap
}

// teeNightly is nightly with the changed-block stream also written to
// /tmp/stream, for the test to read its records.
var teeNightly = strings.Replace(nightly, `"$SNAP" | blkwrite`, `"$SNAP" | tee /tmp/stream | blkwrite`, 1)

// streamRanges returns the source ranges of the DATA and of the ZERO
// records of the stream in path.
func streamRanges(t *testing.T, path string) (data, zero [][2]int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := frame.NewReader(f, frame.WithVerify(false))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return data, zero
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch rec.Type {
		case frame.Data:
			data = append(data, [2]int64{rec.Offset, rec.Length})
		case frame.Zero:
			zero = append(zero, [2]int64{rec.Offset, rec.Length})
		}
	}
}

func within(off int64, rs [][2]int64) bool {
	for _, r := range rs {
		if off >= r[0] && off+blockSize <= r[0]+r[1] {
			return true
		}
	}
	return false
}

// patternBlocks returns the offsets, in img, of the 4 KiB blocks of
// pattern(tag, size), in order, failing if one is not there.
func patternBlocks(t *testing.T, img []byte, tag byte, size int) []int64 {
	t.Helper()
	want := pattern(tag, size)
	at := map[string]int64{}
	for off := 0; off+blockSize <= len(img); off += blockSize {
		if img[off] == tag {
			at[string(img[off:off+blockSize])] = int64(off)
		}
	}
	var offs []int64
	for i := 0; i < size; i += blockSize {
		off, ok := at[string(want[i:i+blockSize])]
		if !ok {
			t.Fatalf("block %d of file %c is not in the snapshot", i/blockSize, tag)
		}
		offs = append(offs, off)
	}
	return offs
}

// mkfsMount makes an ext4 on dev and mounts it on mnt, with its inode
// tables and journal written now (no lazy init behind the test's back).
// The host's mke2fs is in the guest as /opt/e2fs/mke2fs: busybox's makes
// only ext2.
func mkfsMount(t *testing.T, dev, mnt string) {
	t.Helper()
	sh(t, "/opt/e2fs/mke2fs -q -F -t ext4 -b 4096 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "+dev+" && mkdir -p "+mnt+" && mount -t ext4 -o noinit_itable "+dev+" "+mnt)
}

// writeFile writes b to path and fsyncs it.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// fsWriter keeps rewriting 8 files of 64 KiB in place in dir, each write
// fsynced, until stop. Once a snapctl snapshot of lv that was not there at
// its start appears and it has written after that, it creates
// /tmp/wrote-after-snap. last holds what each file last got.
type fsWriter struct {
	dir, lv string
	stop    chan struct{}
	done    chan error
	writes  atomic.Int64
	last    [8][]byte
}

func startFSWriter(t *testing.T, dir, lv string) *fsWriter {
	t.Helper()
	os.Remove("/tmp/wrote-after-snap")
	w := &fsWriter{dir: dir, lv: lv, stop: make(chan struct{}), done: make(chan error, 1)}
	before, _ := filepath.Glob("/dev/vg/" + lv + "_snapctl_*")
	go func() { w.done <- w.run(len(before)) }()
	return w
}

func (w *fsWriter) run(snaps int) error {
	seen := false
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return nil
		default:
		}
		k := i % 8
		b := bytes.Repeat([]byte(fmt.Sprintf("file w%d write %08d\n", k, i)), 64<<10/23+1)[:64<<10]
		f, err := os.OpenFile(filepath.Join(w.dir, fmt.Sprintf("w%d", k)), os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(b, 0)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("write %s/w%d: %w", w.dir, k, err)
		}
		w.last[k] = b
		w.writes.Add(1)
		if seen {
			os.WriteFile("/tmp/wrote-after-snap", nil, 0o644)
		} else if m, _ := filepath.Glob("/dev/vg/" + w.lv + "_snapctl_*"); len(m) > snaps {
			seen = true
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// halt stops the writer and returns its error.
func (w *fsWriter) halt() error {
	close(w.stop)
	return <-w.done
}

// waitAfterSnap prefixes a night's CMD: it starts the copy only once the
// writer has written to the origin after the night's snapshot was taken.
const waitAfterSnap = `n=0; until [ -e /tmp/wrote-after-snap ]; do n=$((n+1)); [ $n -lt 600 ] || { echo the writer never wrote after the snapshot >&2; exit 9; }; sleep 0.1; done
`

// checkFiles mounts the copy dst read-only and checks that it holds want
// (file name → content).
func checkFiles(t *testing.T, dst string, want map[string][]byte) {
	t.Helper()
	sh(t, "mkdir -p /mnt/check && mount -t ext4 -o ro,noload "+dst+" /mnt/check")
	defer sh(t, "umount /mnt/check")
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join("/mnt/check", name))
		if err != nil {
			t.Errorf("the copy: %v", err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("the copy's %s differs at byte %d", name, testutil.FirstDiff(got, b))
		}
	}
}

// guestChangedFS runs the filesystem nights of a lineage: ext4 on origin,
// three files, a night; the largest file deleted (and, trim, the mount
// trimmed: thin unmaps it), a night, which on thin must send the freed
// blocks as ZERO records; a writer busy in the mount while the next
// night's snapshot is taken and copied, which must give the snapshot,
// not the live origin; the writer stopped and the filesystem unmounted,
// a last night, whose copy, mounted, must hold the files and the
// writer's last writes.
func guestChangedFS(t *testing.T, lineage, origin, dst string, opts []string, trim bool) {
	mnt := "/mnt/" + lineage
	mkfsMount(t, origin, mnt)
	defer exec.Command("umount", mnt).Run()
	// Tags no churnDev pattern uses, so the deleted file's blocks can be
	// found by their content.
	files := map[string][]byte{"x": pattern('X', 2<<20), "y": pattern('Y', 1<<20), "z": pattern('Z', 512<<10)}
	for name, b := range files {
		writeFile(t, filepath.Join(mnt, name), b)
	}
	sh(t, "sync")
	if trim {
		// The first trim of a mount covers all free space: here, so
		// that the one after the deletion covers only what it freed.
		sh(t, "fstrim "+mnt)
	}
	// A classic base may overflow under mkfs's writes: then this night
	// is a full copy; either way the copy must be the snapshot.
	_, snap := nightOf(t, lineage, origin, dst, opts, fmt.Sprintf(nightly, dst), "", false)
	xBlocks := patternBlocks(t, snap, 'X', 2<<20)

	// The file deleted.
	cmd := "rm " + mnt + "/x && sync"
	if trim {
		cmd += " && fstrim " + mnt + " && sync"
	}
	sh(t, cmd)
	delete(files, "x")
	out, snap := nightOf(t, lineage, origin, dst, opts, fmt.Sprintf(teeNightly, dst), "changed blocks:", false)
	if !trim {
		checkChangedLine(t, out)
	} else {
		data, zero := streamRanges(t, "/tmp/stream")
		var zeroed, asZero int
		for _, off := range xBlocks {
			if !bytes.Equal(snap[off:off+blockSize], zeroBlock[:]) {
				continue // a pool chunk only partly trimmed keeps its data
			}
			zeroed++
			if within(off, data) {
				t.Errorf("the freed block at %d was sent as DATA", off)
			}
			if within(off, zero) {
				asZero++
			}
		}
		t.Logf("%d of the deleted file's %d blocks read as zeros after fstrim, %d sent in ZERO records", zeroed, len(xBlocks), asZero)
		if zeroed < len(xBlocks)*3/4 || asZero != zeroed {
			t.Errorf("of the deleted file's %d blocks, %d were trimmed and %d of those sent as ZERO records:\n%s", len(xBlocks), zeroed, asZero, out)
		}
		// What was sent as DATA is the filesystem's few metadata
		// writes, not the freed 2 MiB.
		var sent int64
		for _, r := range data {
			sent += r[1]
		}
		if sent > 512<<10 {
			t.Errorf("%d bytes sent as DATA after deleting a 2 MiB file:\n%s", sent, out)
		}
	}

	// A writer busy in the filesystem while the snapshot is taken and
	// sent: the copy is the snapshot, which the origin is not any more.
	w := startFSWriter(t, mnt, filepath.Base(origin))
	before := w.writes.Load()
	_, snap = nightOf(t, lineage, origin, dst, opts, waitAfterSnap+fmt.Sprintf(nightly, dst), "changed blocks:", false)
	during := w.writes.Load() - before
	if err := w.halt(); err != nil {
		t.Fatal(err)
	}
	if during < 2 {
		t.Errorf("the writer wrote %d times during the night", during)
	}
	t.Logf("the writer wrote %d times during the night", during)
	sh(t, "sync")
	if bytes.Equal(snap, readDisk(t, origin, changedSize)) {
		t.Errorf("the origin still equals the night's snapshot after %d writes", during)
	}
	// The next night after the writer stopped (and the filesystem was
	// unmounted, so the copy can be mounted without its journal):
	// nothing written during the last snapshot is lost from the lineage.
	sh(t, "umount "+mnt)
	nightOf(t, lineage, origin, dst, opts, fmt.Sprintf(nightly, dst), "changed blocks:", true)
	for k, b := range w.last {
		if b != nil {
			files[fmt.Sprintf("w%d", k)] = b
		}
	}
	checkFiles(t, dst, files)
}

var zeroBlock [blockSize]byte

// baseRecord returns the path of lineage's base record in the state
// directory the guest test set.
func baseRecord(t *testing.T, lineage string) string {
	t.Helper()
	p := filepath.Join(os.Getenv("BLKPIPE_STATE_DIR"), "snapctl", "bases", lineage)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("base record of %s: %v", lineage, err)
	}
	return p
}

// recordedBase returns the snapshot lineage's base record names.
func recordedBase(t *testing.T, lineage string) snapshot.Snapshot {
	t.Helper()
	b, err := os.ReadFile(baseRecord(t, lineage))
	if err != nil {
		t.Fatal(err)
	}
	var s snapshot.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// heldMetadata fails the test if the thin pool vg/pool holds a metadata
// snapshot (dmsetup status: the field after the data blocks is "-").
func heldMetadata(t *testing.T) {
	t.Helper()
	f := strings.Fields(sh(t, "dmsetup status vg-pool-tpool"))
	if len(f) < 7 || f[2] != "thin-pool" || f[6] != "-" {
		t.Errorf("thin pool status %q: a metadata snapshot is still held", f)
	}
}
