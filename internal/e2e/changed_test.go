package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// changedImageSize is the image the changed-block tests copy.
const changedImageSize = 48<<20 + 4096

// churn changes the file at path as a night of use would: scattered
// 4 KiB writes, a 1 MiB run, and a discarded (hole-punched) MiB of data;
// it returns the number of 4 KiB blocks whose bytes changed at most.
func churn(t *testing.T, path string, seed uint64) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 7))
	blocks := changedImageSize / 4096
	n := 0
	for range 40 {
		b := rng.IntN(blocks)
		if _, err := f.WriteAt(randomBytes(4096, rng.Uint64()), int64(b)*4096); err != nil {
			t.Fatal(err)
		}
		n++
	}
	run := int64(rng.IntN(blocks-512)) * 4096
	if _, err := f.WriteAt(randomBytes(1<<20, seed), run); err != nil {
		t.Fatal(err)
	}
	n += 256
	hole := int64(rng.IntN(blocks-512)) * 4096
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, hole, 1<<20); err != nil {
		t.Fatal(err)
	}
	n += 256
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return n
}

// changedPair is a live image and the way snapshots of it are taken.
type changedPair struct {
	live string
	snap func(t *testing.T, name string) string // a read-only point-in-time copy of live
}

// TestChangedBlocks: a reflink image on XFS and on btrfs, and an image in
// a btrfs subvolume with read-only snapshots, cross nightly as
// changed-block deltas after one full copy: each night the target equals
// the new snapshot, b3sum of the target is the root blkwrite verified,
// only changed blocks go on the wire, and from the second night the
// sender reads only the leaves the changes touch.
func TestChangedBlocks(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "cp", "b3sum", "tee", "wc")
	for _, tc := range []struct {
		name string
		make func(t *testing.T) changedPair
	}{
		{"xfs-reflink", func(t *testing.T) changedPair {
			return clonePair(t, testutil.MountFS(t, 512<<20, "mkfs.xfs", "-q", "-m", "reflink=1"))
		}},
		{"btrfs-reflink", func(t *testing.T) changedPair {
			return clonePair(t, testutil.MountFS(t, 512<<20, "mkfs.btrfs", "-q"))
		}},
		{"btrfs-snapshot", func(t *testing.T) changedPair {
			testutil.NeedCmd(t, "btrfs")
			mnt := testutil.MountFS(t, 512<<20, "mkfs.btrfs", "-q")
			testutil.Run(t, "btrfs", "subvolume", "create", filepath.Join(mnt, "vol"))
			return changedPair{live: filepath.Join(mnt, "vol", "vm.img"), snap: func(t *testing.T, name string) string {
				testutil.Run(t, "btrfs", "subvolume", "snapshot", "-r", filepath.Join(mnt, "vol"), filepath.Join(mnt, name))
				return filepath.Join(mnt, name, "vm.img")
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.make(t)
			stateDir := t.TempDir()
			env := []string{"BLKPIPE_STATE_DIR=" + stateDir}
			img := append(randomBytes(changedImageSize/2, 5), make([]byte, changedImageSize/2)...)
			copy(img[changedImageSize*3/4:], randomBytes(4<<20, 6)) // data after zeros
			writeFile(t, p.live, img)
			tmp := t.TempDir()
			target := filepath.Join(tmp, "target.img")

			base := p.snap(t, "s0")
			if _, stderr, code := sh(t, env, "$BC -q -z lz4 "+base+" | $BW -q "+target); code != 0 {
				t.Fatalf("full copy: exit %d\n%s", code, stderr)
			}
			for night := 1; night <= 2; night++ {
				changed := churn(t, p.live, uint64(night))
				next := p.snap(t, fmt.Sprintf("s%d", night))
				stream := filepath.Join(tmp, "stream")
				_, stderr, code := sh(t, env, fmt.Sprintf("$BC --changed-from %s -z lz4 %s | tee %s | $BW %s", base, next, stream, target))
				if code != 0 {
					t.Fatalf("night %d: exit %d\n%s", night, code, stderr)
				}
				checkCopy(t, stderr, next, target)
				bootstrap := strings.Contains(stderr, "no usable leaf map")
				if bootstrap != (night == 1) {
					t.Errorf("night %d: sender hashed its base %v, want only on the first night:\n%s", night, bootstrap, stderr)
				}
				m := regexp.MustCompile(`changed blocks: listed (\d+) bytes, read (\d+) bytes, sent (\d+) bytes \((\d+) blocks`).FindStringSubmatch(stderr)
				if m == nil {
					t.Fatalf("night %d: no changed-blocks line:\n%s", night, stderr)
				}
				var listed, read, sent, blocks int64
				fmt.Sscan(m[1]+" "+m[2]+" "+m[3]+" "+m[4], &listed, &read, &sent, &blocks)
				wire := wcC(t, stream)
				t.Logf("night %d: ≤%d changed blocks; listed %d, read %d, sent %d blocks, %d bytes on the wire", night, changed, listed, read, blocks, wire)
				if wire != sent {
					t.Errorf("night %d: blkcat says it sent %d bytes, the stream is %d", night, sent, wire)
				}
				if blocks > int64(changed) {
					t.Errorf("night %d: %d blocks sent, at most %d changed", night, blocks, changed)
				}
				// lz4 cannot shrink random blocks; the punched MiB goes as
				// ZERO records: the wire carries about the written blocks.
				if limit := int64(changed-256)*4096*11/10 + 8192; wire > limit {
					t.Errorf("night %d: %d bytes on the wire, want ≤ %d", night, wire, limit)
				}
				if limit := listed + 2*(40+2)*digest.LeafSize; read > limit {
					t.Errorf("night %d: read %d bytes of a %d-byte list, want ≤ %d", night, read, listed, limit)
				}
				if read > changedImageSize/4 {
					t.Errorf("night %d: read %d bytes of a %d-byte image", night, read, changedImageSize)
				}
				base = next
			}
		})
	}
}

// clonePair is an image on a reflink filesystem whose snapshots are
// cp --reflink clones.
func clonePair(t *testing.T, mnt string) changedPair {
	return changedPair{live: filepath.Join(mnt, "vm.img"), snap: func(t *testing.T, name string) string {
		p := filepath.Join(mnt, name+".img")
		testutil.Run(t, "cp", "--reflink=always", filepath.Join(mnt, "vm.img"), p)
		return p
	}}
}

// checkCopy checks that target holds src's bytes and that blkwrite's
// stderr says it verified the BLAKE3 that b3sum prints for the target.
func checkCopy(t *testing.T, stderr, src, target string) {
	t.Helper()
	want, got := mustRead(t, src), mustRead(t, target)
	if !bytes.Equal(got[:min(len(got), len(want))], want) || len(got) < len(want) {
		t.Fatalf("target differs from %s at byte %d", src, testutil.FirstDiff(got, want))
	}
	root := digest.Sum256(want)
	out, _, code := sh(t, nil, "b3sum --no-names "+target)
	if code != 0 || strings.TrimSpace(out) != hex.EncodeToString(root[:]) {
		t.Fatalf("b3sum of the target %q, want %x", out, root)
	}
	if !strings.Contains(stderr, "blkwrite: verified blake3 "+hex.EncodeToString(root[:])+"\n") {
		t.Fatalf("blkwrite did not verify the new snapshot's root %x:\n%s", root, stderr)
	}
}

// TestChangedBlocksRefused: a changed-block delta is refused before
// anything is written when the target's recorded copy is not the
// stream's base, and blkcat sends nothing, saying why, when it has no
// change list it can trust.
func TestChangedBlocksRefused(t *testing.T) {
	n := nightAfterFullCopy(t, 9)
	mnt, p, stateDir, env, base, target, next := n.mnt, n.p, n.stateDir, n.env, n.base, n.target, n.next
	before := mustRead(t, target)

	t.Run("record of another copy", func(t *testing.T) {
		f, err := os.Open(target)
		if err != nil {
			t.Fatal(err)
		}
		id, err := state.Identify(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		other := digest.Sum256([]byte("another night"))
		// A copy of the right size, but another night's: the target
		// missed a run, or was restored.
		c := state.Copy{Target: target, Size: changedImageSize,
			Alg: "blake3", Digest: hex.EncodeToString(other[:]), StreamID: strings.Repeat("0", 32), Time: time.Now()}
		c.SetID(id)
		if err := state.Dir(stateDir).SaveCopy(c); err != nil {
			t.Fatal(err)
		}
		defer state.Dir(stateDir).RemoveCopy(target)
		_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s %s | $BW %s", base, next, target))
		if code == 0 {
			t.Fatalf("delta onto another copy succeeded:\n%s", stderr)
		}
		for _, want := range []string{"does not hold the stream's base", hex.EncodeToString(other[:]), "nothing was written", "sums delta"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("message lacks %q:\n%s", want, stderr)
			}
		}
		if !bytes.Equal(mustRead(t, target), before) {
			t.Fatal("the target was written")
		}
	})

	t.Run("base of another size", func(t *testing.T) {
		other := filepath.Join(mnt, "short.img")
		writeFile(t, other, randomBytes(1<<20, 1))
		_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s %s | $BW %s", other, next, target))
		if code == 0 {
			t.Fatalf("delta from a base of another size succeeded:\n%s", stderr)
		}
		for _, want := range []string{"blkcat: no changed-block delta", "1048576 bytes", "nothing was sent"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("message lacks %q:\n%s", want, stderr)
			}
		}
		if !bytes.Equal(mustRead(t, target), before) {
			t.Fatal("the target was written")
		}
	})

	t.Run("truncated change list", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "list")
		writeFile(t, list, []byte("blkpipe-changes 1\n0 4096\n"))
		_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s --changes %s %s | $BW %s", base, list, next, target))
		if code == 0 || !strings.Contains(stderr, "truncated") || !strings.Contains(stderr, "nothing was sent") {
			t.Fatalf("truncated change list: exit %d:\n%s", code, stderr)
		}
	})

	t.Run("incomplete change list", func(t *testing.T) {
		// Half the image rewritten, a list naming one block: the spot
		// check finds a block outside the list that is not the base's.
		f, err := os.OpenFile(p.live, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(randomBytes(changedImageSize/2, 77), 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		half := p.snap(t, "half")
		list := filepath.Join(t.TempDir(), "list")
		writeFile(t, list, []byte("blkpipe-changes 1\n0 4096\nend 1 4096\n"))
		_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s --changes %s %s | $BW %s", base, list, half, target))
		if code == 0 || !strings.Contains(stderr, "misses the block") || !strings.Contains(stderr, "nothing was sent") {
			t.Fatalf("incomplete change list: exit %d:\n%s", code, stderr)
		}
		if !bytes.Equal(mustRead(t, target), before) {
			t.Fatal("the target was written")
		}
	})

	// And the right base still goes through after all that.
	_, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s %s | $BW %s", base, next, target))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	checkCopy(t, stderr, next, target)
}

// TestChangedBlocksCutShort: a changed-block stream cut in the middle
// leaves the target part old, part new; sending it again (the run is
// redone from the same base, as replicate.sh does after an interrupted
// night) finishes the copy, verified.
func TestChangedBlocksCutShort(t *testing.T) {
	testutil.NeedCmd(t, "head")
	n := nightAfterFullCopy(t, 21)
	env, base, target, next := n.env, n.base, n.target, n.next
	stream := filepath.Join(t.TempDir(), "stream")
	if _, stderr, code := sh(t, env, fmt.Sprintf("$BC -q --changed-from %s %s > %s", base, next, stream)); code != 0 {
		t.Fatalf("blkcat: exit %d\n%s", code, stderr)
	}
	half := wcC(t, stream) / 2
	_, stderr, code := sh(t, env, fmt.Sprintf("head -c %d %s | $BW %s", half, stream, target))
	if code == 0 || !strings.Contains(stderr, "truncated") {
		t.Fatalf("half a stream: exit %d\n%s", code, stderr)
	}
	_, stderr, code = sh(t, env, fmt.Sprintf("$BC -q --changed-from %s %s | $BW %s", base, next, target))
	if code != 0 {
		t.Fatalf("again: exit %d\n%s", code, stderr)
	}
	checkCopy(t, stderr, next, target)
}

// changedNight is a reflink image on XFS whose snapshot base was copied
// in full to target, then changed (churn) and snapshotted again as next.
type changedNight struct {
	mnt, stateDir, base, target, next string
	p                                 changedPair
	env                               []string
}

func nightAfterFullCopy(t *testing.T, seed uint64) changedNight {
	t.Helper()
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "cp")
	n := changedNight{mnt: testutil.MountFS(t, 512<<20, "mkfs.xfs", "-q", "-m", "reflink=1"), stateDir: t.TempDir()}
	n.p = clonePair(t, n.mnt)
	n.env = []string{"BLKPIPE_STATE_DIR=" + n.stateDir}
	writeFile(t, n.p.live, randomBytes(changedImageSize, seed))
	n.base = n.p.snap(t, "s0")
	n.target = filepath.Join(t.TempDir(), "target.img")
	if _, stderr, code := sh(t, n.env, "$BC -q -z lz4 "+n.base+" | $BW -q "+n.target); code != 0 {
		t.Fatalf("full copy: exit %d\n%s", code, stderr)
	}
	churn(t, n.p.live, seed)
	n.next = n.p.snap(t, "s1")
	return n
}
