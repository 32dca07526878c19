package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// versionRE finds the last good version blkwrite --keep names after a
// failed refresh.
var versionRE = regexp.MustCompile(`its last good version is (\S+) \(blake3 ([0-9a-f]{64}) `)

// b3 is b3sum of path.
func b3(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("b3sum", "--no-names", path).Output()
	if err != nil {
		t.Fatalf("b3sum %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// churn returns a copy of b with pct percent of its 4 KiB blocks replaced
// by random ones.
func churn(b []byte, pct int, seed uint64) []byte {
	out := bytes.Clone(b)
	blocks := len(b) / 4096
	r := randomBytes(blocks*8, seed)
	for i := 0; i < blocks*pct/100; i++ {
		blk := int(uint64(r[i*8])|uint64(r[i*8+1])<<8|uint64(r[i*8+2])<<16) % blocks
		copy(out[blk*4096:], randomBytes(4096, seed*1000+uint64(i)))
	}
	return out
}

// versionPaths is the VERSION column of blkwrite --versions, without the
// current copy.
func versionPaths(t *testing.T, target string) []string {
	t.Helper()
	out, stderr, code := run(t, nil, testutil.Tool(t, "blkwrite"), "--versions", target)
	if code != 0 {
		t.Fatalf("blkwrite --versions %s: exit %d: %s", target, code, stderr)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasSuffix(l, "-") {
			paths = append(paths, f[0])
		}
	}
	return paths
}

// TestKeepVersions runs blkwrite --keep on a reflink image on XFS and on
// btrfs, in loop file systems made here: every refresh keeps the copy
// before it, at most N versions stay, a refresh cut or killed at 10 %,
// 50 % and 99 % leaves the last version byte-identical to the copy before
// and names it, and a kept version restores to a primary in full and as a
// delta.
func TestKeepVersions(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "b3sum", "cp")
	for _, fs := range []struct {
		name, mkfs string
		args       []string
		backend    string
	}{
		{"xfs-reflink", "mkfs.xfs", []string{"-q", "-m", "reflink=1"}, "reflink"},
		{"btrfs", "mkfs.btrfs", []string{"-q"}, "btrfs"},
	} {
		t.Run(fs.name, func(t *testing.T) {
			testutil.NeedCmd(t, fs.mkfs)
			mnt := testutil.MountFS(t, 1<<30, fs.mkfs, fs.args...)
			keepVersions(t, mnt, fs.backend)
		})
	}
}

func keepVersions(t *testing.T, mnt, backend string) {
	const size, keep = 32 << 20, 3
	blkcat, blkwrite := testutil.Tool(t, "blkcat"), testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	target := filepath.Join(mnt, "backup.img")
	writeFile(t, target, nil)

	// gens[k] is the source at refresh k; digests[k] its b3sum.
	var gens [][]byte
	var digests []string
	refresh := func(k int, delta bool) string {
		t.Helper()
		src := filepath.Join(dir, fmt.Sprintf("src%d", k))
		writeFile(t, src, gens[k])
		script := `$BC --frame "$SRC" | $BW --keep ` + fmt.Sprint(keep) + ` "$T"`
		if delta {
			script = `$BC --sums "$T" > "$SRC.sums" && $BC --against "$SRC.sums" "$SRC" | $BW --keep ` + fmt.Sprint(keep) + ` "$T"`
		}
		_, stderr, code := sh(t, []string{"SRC=" + src, "T=" + target}, script)
		if code != 0 {
			t.Fatalf("refresh %d: exit %d:\n%s", k, code, stderr)
		}
		if got := b3(t, target); got != digests[k] {
			t.Fatalf("refresh %d: target b3sum %s, source %s", k, got, digests[k])
		}
		return stderr
	}
	gens = append(gens, randomBytes(size, 1))
	digests = append(digests, b3(t, writeTemp(t, dir, gens[0])))
	if stderr := refresh(0, false); !strings.Contains(stderr, "holds no verified copy yet: no version to keep") {
		t.Errorf("first copy: stderr does not say there is nothing to keep:\n%s", stderr)
	}
	if v := versionPaths(t, target); len(v) != 0 {
		t.Fatalf("after the first copy: versions %v, want none", v)
	}
	// Nightly runs at 1 % churn, every other one a delta: after run k
	// the versions are the copies of runs k-keep .. k-1.
	for k := 1; k <= 6; k++ {
		gens = append(gens, churn(gens[k-1], 1, uint64(k+1)))
		digests = append(digests, b3(t, writeTemp(t, dir, gens[k])))
		stderr := refresh(k, k%2 == 0)
		if !strings.Contains(stderr, "kept version ") || !strings.Contains(stderr, digests[k-1]) {
			t.Errorf("refresh %d: stderr does not name the version of %s:\n%s", k, digests[k-1], stderr)
		}
		v := versionPaths(t, target)
		if want := min(k, keep); len(v) != want {
			t.Fatalf("after refresh %d: %d versions %v, want %d", k, len(v), v, want)
		}
		for i, p := range v {
			j := k - len(v) + i
			if got := b3(t, p); got != digests[j] {
				t.Errorf("after refresh %d: version %s has b3sum %s, want that of refresh %d (%s)", k, p, got, j, digests[j])
			}
		}
	}
	last := len(gens) - 1

	// snapctl gc leaves kept versions alone whatever their age.
	if _, stderr, code := run(t, nil, testutil.Tool(t, "snapctl"), "gc", "--older-than", "0"); code != 0 {
		t.Fatalf("snapctl gc: exit %d: %s", code, stderr)
	}
	if v := versionPaths(t, target); len(v) != keep {
		t.Fatalf("after snapctl gc: versions %v, want %d", v, keep)
	}

	// A refresh cut (the sender died) or killed at 10, 50 and 99 %.
	next := churn(gens[last], 30, 99)
	nextSrc := writeTemp(t, dir, next)
	stream, stderr, code := run(t, nil, blkcat, "--frame", "status=none", nextSrc)
	if code != 0 {
		t.Fatalf("blkcat --frame: %s", stderr)
	}
	// The first failed refresh keeps the copy of the last good one as a
	// new version; every later one finds it kept, and nothing is pruned.
	before := versionPaths(t, target)
	newest := ""
	for _, pct := range []int{10, 50, 99} {
		for _, how := range []string{"cut", "killed"} {
			cut := []byte(stream[:len(stream)*pct/100])
			if how == "cut" {
				_, stderr, code := run(t, cut, blkwrite, "--keep", fmt.Sprint(keep), target)
				if code == 0 {
					t.Fatalf("%d %% %s: blkwrite exit 0", pct, how)
				}
				m := versionRE.FindStringSubmatch(stderr)
				if m == nil || (newest != "" && m[1] != newest) || m[2] != digests[last] {
					t.Fatalf("%d %% %s: stderr does not name the version %s (blake3 %s) as the last good one:\n%s", pct, how, newest, digests[last], stderr)
				}
				if newest == "" {
					newest = m[1]
					before = append(before, newest)
				}
			} else {
				killAt(t, blkwrite, target, cut, int64(size*pct/100)-2<<20)
			}
			if got := b3(t, newest); got != digests[last] {
				t.Fatalf("%d %% %s: version %s b3sum %s, the copy before was %s", pct, how, newest, got, digests[last])
			}
			if v := versionPaths(t, target); strings.Join(v, " ") != strings.Join(before, " ") {
				t.Errorf("%d %% %s: versions %v, want %v", pct, how, v, before)
			}
		}
	}
	// The hint works: copy the version back.
	if backend == "reflink" || backend == "btrfs" {
		testutil.Run(t, "cp", "--reflink=always", newest, target)
		if got := b3(t, target); got != digests[last] {
			t.Errorf("cp --reflink=always back: target b3sum %s, want %s", got, digests[last])
		}
	}

	// Restore version k to the primary, in full and as a delta against
	// what the primary holds, and the current copy as a delta.
	primary := filepath.Join(dir, "primary.img")
	for i, p := range before {
		k := last - len(before) + 1 + i
		writeFile(t, primary, next)
		full := i%2 == 0
		script := `$BC --frame "$V" | $BW "$P"`
		if !full {
			script = `$BC --sums "$P" > "$P.sums" && $BC --against "$P.sums" "$V" | $BW "$P"`
		}
		if _, stderr, code := sh(t, []string{"V=" + p, "P=" + primary}, script); code != 0 {
			t.Fatalf("restore %s: exit %d:\n%s", p, code, stderr)
		}
		if got := b3(t, primary); got != digests[k] {
			t.Errorf("restore of %s (full %v): primary b3sum %s, source at refresh %d was %s", p, full, got, k, digests[k])
		}
	}

	// The next good refresh prunes back to N: the failures' version is
	// the newest kept one.
	gens = append(gens, next)
	digests = append(digests, b3(t, nextSrc))
	refresh(last+1, false)
	v := versionPaths(t, target)
	if len(v) != keep || v[keep-1] != newest {
		t.Errorf("after a good refresh: versions %v, want %d ending in %s", v, keep, newest)
	}
}

// writeTemp writes b to a new file in dir and returns its path.
func writeTemp(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "gen-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// killAt runs blkwrite --keep on target with stream on a pipe kept open,
// and SIGKILLs it once it has written written bytes.
func killAt(t *testing.T, blkwrite, target string, stream []byte, written int64) {
	t.Helper()
	cmd := exec.Command(blkwrite, "--keep", "3", target)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(stream) }()
	waitWritten(t, cmd.Process.Pid, max(written, 1))
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	w.Close()
}

// TestKeepRefused: --keep on a target no backend can snapshot (an image
// on ext4), or with raw input, is refused before anything is written.
func TestKeepRefused(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "bash")
	mnt := testutil.MountFS(t, 64<<20, "mkfs.ext4", "-q")
	target := filepath.Join(mnt, "t.img")
	old := randomBytes(1<<20, 5)
	src := writeTemp(t, t.TempDir(), randomBytes(1<<20, 6))
	for _, tt := range []struct {
		name, script, want string
	}{
		{"ext4", `$BC --frame "$SRC" | $BW --keep 2 "$T"`, "blkwrite: --keep: " + target + " cannot be kept as a version, nothing was written: "},
		{"raw", `$BC "$SRC" | $BW --keep 2 "$T"`, "blkwrite: --keep: '" + target + "' was left as it was: only a verified copy makes a good version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, target, old)
			_, stderr, code := sh(t, []string{"SRC=" + src, "T=" + target}, tt.script)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
			if got, _ := os.ReadFile(target); !bytes.Equal(got, old) {
				t.Errorf("refused --keep changed the target")
			}
		})
	}
}

// TestKeepForced: command="blkwrite --allow T --keep 2" keeps versions of
// every stream its key sends, and the client cannot change --keep.
func TestKeepForced(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.xfs", "b3sum")
	mnt := testutil.MountFS(t, 512<<20, "mkfs.xfs", "-q", "-m", "reflink=1")
	blkcat, blkwrite := testutil.Tool(t, "blkcat"), testutil.Tool(t, "blkwrite")
	target := filepath.Join(mnt, "t.img")
	writeFile(t, target, nil)
	dir := t.TempDir()
	send := func(seed uint64, client string) (string, int) {
		src := writeTemp(t, dir, randomBytes(4<<20, seed))
		stream, _, _ := run(t, nil, blkcat, "--frame", "status=none", src)
		cmd := exec.Command(blkwrite, "--allow", target, "--keep", "2")
		cmd.Env = append(os.Environ(), "SSH_ORIGINAL_COMMAND="+client)
		cmd.Stdin = strings.NewReader(stream)
		_, stderr, code := runCmd(t, cmd)
		return stderr, code
	}
	for i := uint64(1); i <= 4; i++ {
		if stderr, code := send(i, "blkwrite "+target); code != 0 {
			t.Fatalf("send %d: exit %d: %s", i, code, stderr)
		}
	}
	if v := versionPaths(t, target); len(v) != 2 {
		t.Errorf("after 4 sends with a forced --keep 2: versions %v, want 2", v)
	}
	before := b3(t, target)
	for _, client := range []string{"blkwrite --keep 100 " + target, "blkwrite --keep=1 " + target} {
		stderr, code := send(9, client)
		if code != 3 || !strings.Contains(stderr, "blkwrite: refused: the forced command sets --keep for this key; the client may not change it") {
			t.Errorf("%q: exit %d, stderr %q; want 3 and a refusal", client, code, stderr)
		}
	}
	if b3(t, target) != before {
		t.Errorf("a refused client changed the target")
	}
}
