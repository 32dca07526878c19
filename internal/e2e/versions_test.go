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

// b3sum is what b3sum prints for path.
func b3sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("b3sum", "--no-names", path).Output()
	if err != nil {
		t.Fatalf("b3sum %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// churnBytes returns a copy of b with pct percent of its 4 KiB blocks replaced
// by random ones.
func churnBytes(b []byte, pct int, seed uint64) []byte {
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
func versionPaths(t *testing.T, blkwrite, target string) []string {
	t.Helper()
	out, stderr, code := run(t, nil, blkwrite, "--versions", target)
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
	}{
		{"xfs-reflink", "mkfs.xfs", []string{"-q", "-m", "reflink=1"}},
		{"btrfs", "mkfs.btrfs", []string{"-q"}},
	} {
		t.Run(fs.name, func(t *testing.T) {
			testutil.NeedCmd(t, fs.mkfs)
			mnt := testutil.MountFS(t, 1<<30, fs.mkfs, fs.args...)
			target := filepath.Join(mnt, "backup.img")
			writeFile(t, target, nil)
			keepVersions(t, keepSetup{
				target: target, size: 32 << 20,
				blkcat: testutil.Tool(t, "blkcat"), blkwrite: testutil.Tool(t, "blkwrite"), snapctl: testutil.Tool(t, "snapctl"),
				useVersion: func(t *testing.T, version string) {
					testutil.Run(t, "cp", "--reflink=always", version, target)
				},
			})
		})
	}
}

// keepSetup is one target for keepVersions and the tools to use.
type keepSetup struct {
	target                    string
	shell                     string // bash, or the guest's sh
	size                      int    // of the source, in bytes
	blkcat, blkwrite, snapctl string
	// useVersion puts version back onto target the way blkwrite's hint
	// says.
	useVersion func(t *testing.T, version string)
	// afterRun, if set, is called after every good refresh (the thin
	// pool's usage is logged there).
	afterRun func(t *testing.T, k int)
}

// sh runs a pipeline with k.shell (default bash) and pipefail, $BC and
// $BW set to k's tools.
func (k keepSetup) sh(t *testing.T, env []string, script string) (string, string, int) {
	t.Helper()
	shell := k.shell
	if shell == "" {
		shell = "bash"
	}
	cmd := exec.Command(shell, "-c", "set -o pipefail\n"+script)
	cmd.Env = append(append(os.Environ(), "BC="+k.blkcat, "BW="+k.blkwrite), env...)
	return runCmd(t, cmd)
}

func keepVersions(t *testing.T, k keepSetup) {
	const keep = 3
	size, blkcat, blkwrite, target := k.size, k.blkcat, k.blkwrite, k.target
	dir := t.TempDir()

	// gens[k] is the source at refresh k; digests[k] its b3sum.
	var gens [][]byte
	var digests []string
	refresh := func(n int, delta bool) string {
		t.Helper()
		src := filepath.Join(dir, "src")
		writeFile(t, src, gens[n])
		script := `$BC --frame "$SRC" | $BW --keep ` + fmt.Sprint(keep) + ` "$T"`
		if delta {
			script = `$BC --sums "$T" > "$SRC.sums" && $BC --against "$SRC.sums" "$SRC" | $BW --keep ` + fmt.Sprint(keep) + ` "$T"`
		}
		_, stderr, code := k.sh(t, []string{"SRC=" + src, "T=" + target}, script)
		if code != 0 {
			t.Fatalf("refresh %d: exit %d:\n%s", n, code, stderr)
		}
		if got := b3sum(t, target); got != digests[n] {
			t.Fatalf("refresh %d: target b3sum %s, source %s", n, got, digests[n])
		}
		if k.afterRun != nil {
			k.afterRun(t, n)
		}
		// Only the newest generations are needed from here.
		if n > 0 {
			gens[n-1] = nil
		}
		return stderr
	}
	gens = append(gens, randomBytes(size, 1))
	digests = append(digests, b3sum(t, writeTemp(t, dir, gens[0])))
	if stderr := refresh(0, false); !strings.Contains(stderr, "holds no verified copy yet: no version to keep") {
		t.Errorf("first copy: stderr does not say there is nothing to keep:\n%s", stderr)
	}
	if v := versionPaths(t, k.blkwrite, k.target); len(v) != 0 {
		t.Fatalf("after the first copy: versions %v, want none", v)
	}
	// Nightly runs at 1 % churn, every other one a delta: after run k
	// the versions are the copies of runs k-keep .. k-1.
	for n := 1; n <= 6; n++ {
		gens = append(gens, churnBytes(gens[n-1], 1, uint64(n+1)))
		digests = append(digests, b3sum(t, writeTemp(t, dir, gens[n])))
		stderr := refresh(n, n%2 == 0)
		if !strings.Contains(stderr, "kept version ") || !strings.Contains(stderr, digests[n-1]) {
			t.Errorf("refresh %d: stderr does not name the version of %s:\n%s", n, digests[n-1], stderr)
		}
		v := versionPaths(t, k.blkwrite, k.target)
		if want := min(n, keep); len(v) != want {
			t.Fatalf("after refresh %d: %d versions %v, want %d", n, len(v), v, want)
		}
		for i, p := range v {
			j := n - len(v) + i
			if got := b3sum(t, p); got != digests[j] {
				t.Errorf("after refresh %d: version %s has b3sum %s, want that of refresh %d (%s)", n, p, got, j, digests[j])
			}
		}
	}
	last := len(gens) - 1

	// snapctl gc leaves kept versions alone whatever their age.
	if _, stderr, code := run(t, nil, k.snapctl, "gc", "--older-than", "0"); code != 0 {
		t.Fatalf("snapctl gc: exit %d: %s", code, stderr)
	}
	if v := versionPaths(t, k.blkwrite, k.target); len(v) != keep {
		t.Fatalf("after snapctl gc: versions %v, want %d", v, keep)
	}

	// A refresh cut (the sender died) or killed at 10, 50 and 99 %.
	next := churnBytes(gens[last], 30, 99)
	nextSrc := writeTemp(t, dir, next)
	stream, stderr, code := run(t, nil, blkcat, "--frame", "status=none", nextSrc)
	if code != 0 {
		t.Fatalf("blkcat --frame: %s", stderr)
	}
	// The first failed refresh keeps the copy of the last good one as a
	// new version; every later one finds it kept, and nothing is pruned.
	before := versionPaths(t, k.blkwrite, k.target)
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
				if newest == "" {
					t.Fatal("killed before any cut run named the version")
				}
			}
			if got := b3sum(t, newest); got != digests[last] {
				t.Fatalf("%d %% %s: version %s b3sum %s, the copy before was %s", pct, how, newest, got, digests[last])
			}
			if v := versionPaths(t, k.blkwrite, k.target); strings.Join(v, " ") != strings.Join(before, " ") {
				t.Errorf("%d %% %s: versions %v, want %v", pct, how, v, before)
			}
		}
	}
	// Restore version k to the primary, in full and as a delta against
	// what the primary holds, and the current copy as a delta.
	primary := filepath.Join(dir, "primary.img")
	for i, p := range before {
		n := last - len(before) + 1 + i
		writeFile(t, primary, next)
		full := i%2 == 0
		script := `$BC --frame "$V" | $BW "$P"`
		if !full {
			script = `$BC --sums "$P" > "$P.sums" && $BC --against "$P.sums" "$V" | $BW "$P"`
		}
		if _, stderr, code := k.sh(t, []string{"V=" + p, "P=" + primary}, script); code != 0 {
			t.Fatalf("restore %s: exit %d:\n%s", p, code, stderr)
		}
		if got := b3sum(t, primary); got != digests[n] {
			t.Errorf("restore of %s (full %v): primary b3sum %s, source at refresh %d was %s", p, full, got, n, digests[n])
		}
	}

	// The next good refresh prunes back to N: the failures' version is
	// the newest kept one.
	gens = append(gens, next)
	digests = append(digests, b3sum(t, nextSrc))
	refresh(last+1, false)
	v := versionPaths(t, k.blkwrite, k.target)
	if len(v) != keep || v[keep-1] != newest {
		t.Errorf("after a good refresh: versions %v, want %d ending in %s", v, keep, newest)
	}
	// blkwrite's hint works: the newest version put back onto the target.
	k.useVersion(t, newest)
	if got := b3sum(t, target); got != digests[last] {
		t.Errorf("the version put back: target b3sum %s, want %s", got, digests[last])
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
	if v := versionPaths(t, blkwrite, target); len(v) != 2 {
		t.Errorf("after 4 sends with a forced --keep 2: versions %v, want 2", v)
	}
	before := b3sum(t, target)
	for _, client := range []string{"blkwrite --keep 100 " + target, "blkwrite --keep=1 " + target} {
		stderr, code := send(9, client)
		if code != 3 || !strings.Contains(stderr, "blkwrite: refused: the forced command sets --keep for this key; the client may not change it") {
			t.Errorf("%q: exit %d, stderr %q; want 3 and a refusal", client, code, stderr)
		}
	}
	if b3sum(t, target) != before {
		t.Errorf("a refused client changed the target")
	}
}
