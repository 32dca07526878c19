package sshtest_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestReplicateScript runs scripts/replicate.sh end to end from the client
// namespace: the copy through real ssh, the summary line, the rsync of a
// config directory to the backup host (which sees its own directory at the
// same path), and the failure of a stage.
func TestReplicateScript(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "rsync", "unshare", "blockdev")
	dir := tools(t)
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	const size = 64 << 20
	img := sshtest.Ext4Image(t, size, sshtest.MixedTree(t, 32<<20))
	src := testutil.LoopDevice(t, img)
	want := sshtest.BLAKE3(t, img)

	// The config directory: its path on the client, and what the backup
	// host sees at that path.
	cfg := t.TempDir()
	for name, body := range map[string]string{"config.pl": "$Conf{XferMethod} = 'rsync';\n", "hosts": "primary 0 backuppc\n"} {
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	remoteCfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(remoteCfg, "stale"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := sshtest.New(t, dir, []string{"backup"}, sshtest.WithBind("backup", cfg, remoteCfg))
	var runEnv func(t *testing.T, extra []string, args ...string) sshtest.Result

	run := func(t *testing.T, args ...string) sshtest.Result {
		t.Helper()
		return runEnv(t, nil, args...)
	}
	runEnv = func(t *testing.T, extra []string, args ...string) sshtest.Result {
		t.Helper()
		env := append([]string{"SCRIPT=" + script}, extra...)
		for i, a := range args {
			env = append(env, "A"+string(rune('a'+i))+"="+a)
		}
		var words []string
		for i := range args {
			words = append(words, `"$A`+string(rune('a'+i))+`"`)
		}
		return lab.Run(lab.Client, `"$SCRIPT" --ssh "$SSH" `+strings.Join(words, " "), 3*time.Minute, env...)
	}

	type mode struct{ name, flag, digest string }
	modes := []mode{{"raw", "--raw", "raw, not verified"}}
	for _, c := range []string{"none", "lz4", "zstd"} {
		modes = append(modes, mode{c, "--compress=" + c, "blake3 " + want})
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.flag != "--raw" {
				needFrame(t)
			}
			dst, _ := testutil.LoopImage(t, size)
			args := []string{"--no-snapshot", m.flag, src, "backup", dst}
			if m.name == "none" {
				// pvcat -L in the pipeline: the rate limit changes no byte.
				if !has(t, "pvcat") {
					testutil.Skip(t, "feature pvcat not on this branch yet")
				}
				args = append([]string{"--rate", "200M"}, args...)
			}
			sync := ""
			if i == 0 {
				args = append([]string{"--config-dir", cfg, "--config-delete"}, args...)
				sync = ", synced " + cfg
			}
			r := run(t, args...)
			re := regexp.MustCompile(`^replicate: ok ` + regexp.QuoteMeta(src+" -> backup:"+dst) +
				` 67108864 bytes in [0-9.]+ s, [0-9.]+ MB/s, ` + regexp.QuoteMeta(m.digest+sync) + "\n$")
			if r.Code != 0 || !re.MatchString(r.Stdout) {
				t.Fatalf("exit %d, stdout %q, want a line matching %s\nstderr:\n%s", r.Code, r.Stdout, re, r.Stderr)
			}
			if got := sshtest.BLAKE3(t, dst); got != want {
				t.Fatalf("target sha256 %s, source %s", got, want)
			}
			if i == 0 {
				// --config-delete, rsync -a --delete: the backup
				// host's copy is the client's directory, the stale
				// file gone.
				if got, want := sshtest.TreeDigests(t, remoteCfg), sshtest.TreeDigests(t, cfg); !equalMaps(got, want) {
					t.Fatalf("backup's config dir %v, client's %v", got, want)
				}
			}
		})
	}

	// The recipe as users run it: the source is an image file on btrfs
	// that may be written while it is copied; snapctl snapshots it (a
	// subvolume snapshot, or a reflink copy) and removes the snapshot.
	for _, backend := range []string{"btrfs", "reflink"} {
		t.Run("snapctl-"+backend, func(t *testing.T) {
			if !has(t, "snapctl") {
				testutil.Skip(t, "feature snapctl not on this branch yet")
			}
			testutil.NeedCmd(t, "mkfs.btrfs")
			if !hasFrame(t) {
				testutil.Skip(t, "feature blkcat --frame not on this branch yet")
			}
			mnt := t.TempDir()
			fsdev, _ := testutil.LoopImage(t, 512<<20)
			testutil.Run(t, "mkfs.btrfs", "-q", fsdev)
			testutil.Run(t, "mount", fsdev, mnt)
			t.Cleanup(func() { testutil.Run(t, "umount", mnt) })
			origin := filepath.Join(mnt, "data.img")
			testutil.Run(t, "cp", "--reflink=never", img, origin)
			state := "SNAPCTL_STATE_DIR=" + filepath.Join(t.TempDir(), "state")
			dst, _ := testutil.LoopImage(t, size)
			r := runEnv(t, []string{state}, "--snapshot-opt", "--backend "+backend, "--compress", "lz4", origin, "backup", dst)
			re := regexp.MustCompile(`^replicate: ok ` + regexp.QuoteMeta(origin+" -> backup:"+dst) +
				` 67108864 bytes in [0-9.]+ s, [0-9.]+ MB/s, blake3 ` + want + "\n$")
			if r.Code != 0 || !re.MatchString(r.Stdout) {
				t.Fatalf("exit %d, stdout %q, want a line matching %s\nstderr:\n%s", r.Code, r.Stdout, re, r.Stderr)
			}
			if got := sshtest.BLAKE3(t, dst); got != want {
				t.Fatalf("target sha256 %s, source %s", got, want)
			}
			l := lab.Run(lab.Client, `snapctl list --backend `+backend, time.Minute, state)
			if l.Code != 0 || strings.Count(strings.TrimSpace(l.Stdout), "\n") != 0 {
				t.Fatalf("snapctl list after the copy: exit %d\n%s%s", l.Code, l.Stdout, l.Stderr)
			}
		})
	}

	t.Run("failed stage", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-dir", "data.img")
		r := run(t, "--no-snapshot", "--raw", src, "backup", missing)
		re := regexp.MustCompile(`^replicate: FAILED ` + regexp.QuoteMeta(src+" -> backup:"+missing) +
			` after [0-9.]+ s( \([0-9]+ bytes read\))?: (blkcat exited (1|141), )?ssh/blkwrite exited 1\n$`)
		if r.Code != 1 || !re.MatchString(r.Stdout) {
			t.Fatalf("exit %d, stdout %q, want exit 1 and a line matching %s\nstderr:\n%s", r.Code, r.Stdout, re, r.Stderr)
		}
		if !strings.Contains(r.Stderr, "replicate:   blkwrite: failed to open '"+missing+"'") {
			t.Fatalf("stderr does not show blkwrite's error:\n%s", r.Stderr)
		}
	})

	// The backup volume not active (or its name mistyped): blkwrite used
	// to write the copy into a new file in /dev, in RAM, and the run
	// reported it verified.
	t.Run("target missing in /dev", func(t *testing.T) {
		needFrame(t)
		missing := fmt.Sprintf("/dev/blkpipe-test-%d-missing", os.Getpid())
		t.Cleanup(func() { os.Remove(missing) })
		r := run(t, "--no-snapshot", src, "backup", missing)
		re := regexp.MustCompile(`^replicate: FAILED ` + regexp.QuoteMeta(src+" -> backup:"+missing) +
			` after [0-9.]+ s( \([0-9]+ bytes read\))?: (blkcat exited (1|141), )?ssh/blkwrite exited 1\n$`)
		if r.Code != 1 || !re.MatchString(r.Stdout) {
			t.Fatalf("exit %d, stdout %q, want exit 1 and a line matching %s\nstderr:\n%s", r.Code, r.Stdout, re, r.Stderr)
		}
		if want := "replicate:   blkwrite: '" + missing + "' does not exist (is the volume active? is the name right?); blkwrite does not create files in /dev\n"; !strings.Contains(r.Stderr, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, r.Stderr)
		}
		if _, err := os.Lstat(missing); err == nil {
			t.Fatalf("%s was created", missing)
		}
	})

	// Last, as it shapes the link: the connection killed mid-copy fails
	// the run, and the summary says so.
	t.Run("killed", func(t *testing.T) {
		needFrame(t)
		lab.Shape("backup", "20mbit")
		dst, dstImage := testutil.LoopImage(t, size)
		ctx := t.Context()
		cmd := lab.Bash(ctx, lab.Client, `"$SCRIPT" --ssh "$SSH" --no-snapshot "$SRC" backup "$DST"`,
			"SCRIPT="+script, "SRC="+src, "DST="+dst)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ssh, err := sshtest.WaitDescendant(cmd.Process.Pid, "ssh", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		waitLanded(t, dstImage, 0)
		syscall.Kill(ssh.PID, syscall.SIGKILL)
		code := sshtest.ExitCode(cmd.Wait())
		re := regexp.MustCompile(`^replicate: FAILED ` + regexp.QuoteMeta(src+" -> backup:"+dst) +
			` after [0-9.]+ s( \([0-9]+ bytes read\))?: (blkcat exited [0-9]+, )?ssh/blkwrite exited 137\n$`)
		if code != 1 || !re.MatchString(stdout.String()) {
			t.Fatalf("exit %d, stdout %q; want exit 1 and a line matching %s\nstderr:\n%s", code, stdout.String(), re, stderr.String())
		}
		t.Logf("exit %d\n%s%s", code, stdout.String(), stderr.String())
		if strings.Contains(stdout.String()+stderr.String(), "verified") {
			t.Fatalf("a killed copy claims verification:\n%s%s", stdout.String(), stderr.String())
		}
		if n, _ := sshtest.Diff(t, src, dst, size); n == 0 {
			t.Fatal("target equals the source though the copy was killed")
		}
	})

	t.Run("usage", func(t *testing.T) {
		r := run(t, "--compress", "gzip", src, "backup", "/tmp/x")
		if r.Code != 2 || r.Stderr != "replicate: invalid --compress 'gzip' (lz4, zstd, zstd:LEVEL or none)\n" {
			t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestReplicateDryRun checks what replicate.sh would run for the example
// config file, and that the command line overrides the file.
func TestReplicateDryRun(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	root := testutil.ModuleRoot(t)
	script := filepath.Join(root, "scripts", "replicate.sh")
	conf := filepath.Join(root, "scripts", "examples", "replicate.conf")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"config", []string{"-c", conf}, []string{
			"snapctl run --freeze /srv /dev/vg0/data -- bash -c 'set -o pipefail\nsrc=$SNAP\n",
			`blkcat -z lz4 "$src" 2>`,
			`| pvcat -q --wire -L 80M --json-fd 3 3>"$d/wire.json" | ssh -i /root/.ssh/blkpipe_ed25519 -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 root@backup.example.net blkwrite\ /dev/vg1/data 2>`,
		}},
		{"overrides", []string{"--compress=zstd:5", "--no-snapshot", "--rate", "1G", "--config", conf, "--config-dir", "/etc/backuppc", "--config-delete", "--blkwrite", "/opt/bin/blkwrite"}, []string{
			"bash -c 'set -o pipefail\nsrc=/dev/vg0/data\n",
			`blkcat -z zstd:5 "$src" 2>`,
			`| pvcat -q --wire -L 1G --json-fd 3 3>"$d/wire.json" | ssh -i /root/.ssh/blkpipe_ed25519`,
			"root@backup.example.net /opt/bin/blkwrite\\ /dev/vg1/data 2>",
			"rsync -a --delete -e ssh\\ -i\\ /root/.ssh/blkpipe_ed25519\\ -o\\ BatchMode=yes",
			" /etc/backuppc/ root@backup.example.net:/etc/backuppc/\n",
		}},
		// rsync --delete only with --config-delete.
		{"config-dir", []string{"--no-snapshot", "--config-dir", "/etc/backuppc/", "/dev/sdb", "backup", "/srv/sdb.img"}, []string{
			"\nrsync -a -e ssh\\ -o\\ BatchMode=yes",
			" /etc/backuppc/ backup:/etc/backuppc/\n",
		}},
		{"raw", []string{"--raw", "--no-snapshot", "/dev/sdb", "backup", "/srv/sdb.img"}, []string{
			"src=/dev/sdb\n",
			`blkcat "$src" 2>"$d/blkcat.err" |`,
			" backup blkwrite\\ /srv/sdb.img 2>",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(script, append([]string{"-n"}, tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.name == "config" && strings.Contains(string(out), "rsync") {
				t.Errorf("rsync without a config dir:\n%s", out)
			}
			if tc.name == "config-dir" && strings.Contains(string(out), "--delete") {
				t.Errorf("rsync --delete without --config-delete:\n%s", out)
			}
		})
	}
}

// TestReplicateHelp: --help prints the whole usage comment, down to the
// last exit status.
func TestReplicateHelp(t *testing.T) {
	testutil.NeedCmd(t, "bash", "sed")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	out, err := exec.Command(script, "--help").Output()
	if err != nil || !strings.HasPrefix(string(out), "Usage: replicate.sh ") ||
		!strings.HasSuffix(string(out), "\n2 usage or configuration error.\n") {
		t.Fatalf("replicate.sh --help: %v, output:\n%s", err, out)
	}
}

// TestReplicateInterrupted: Ctrl-C (SIGINT to the process group) during a
// copy under snapctl removes the snapshot and replicate's temp dir, and the
// summary says the copy was interrupted, not that it never ran. ssh is a
// local stand-in that runs the remote command with sh -c.
func TestReplicateInterrupted(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "bash", "mkfs.btrfs", "mount", "umount")
	if !has(t, "snapctl") || !has(t, "pvcat") {
		testutil.Skip(t, "snapctl and pvcat not on this branch yet")
	}
	needFrame(t)
	dir := tools(t)
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	work := t.TempDir()
	fakeSSH := filepath.Join(work, "ssh")
	// ssh [-o OPT]... HOST CMD: drop the options and the host.
	body := "#!/bin/sh\nwhile [ \"${1#-}\" != \"$1\" ]; do case $1 in -[oi]) shift 2 ;; *) shift ;; esac; done\nshift\nexec sh -c \"$*\"\n"
	if err := os.WriteFile(fakeSSH, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	fsdev, _ := testutil.LoopImage(t, 256<<20)
	testutil.Run(t, "mkfs.btrfs", "-q", fsdev)
	testutil.Run(t, "mount", fsdev, mnt)
	t.Cleanup(func() { testutil.Run(t, "umount", mnt) })
	origin := filepath.Join(mnt, "data.img")
	data := make([]byte, 64<<20)
	rand.Read(data) // incompressible: at --rate 4M the copy takes 16 s
	if err := os.WriteFile(origin, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	env := append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "TMPDIR="+tmp,
		"SNAPCTL_STATE_DIR="+filepath.Join(work, "snapstate"), "BLKPIPE_STATE_DIR="+filepath.Join(work, "blkstate"))
	dst := filepath.Join(work, "copy.img")
	cmd := exec.Command(script, "--ssh", fakeSSH, "--rate", "4M", origin, "backup", dst)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	// Interrupt once some of the copy has landed.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(dst); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing landed in 30 s\n%s%s", stdout.String(), stderr.String())
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	code := sshtest.ExitCode(cmd.Wait())
	re := regexp.MustCompile(`^replicate: FAILED ` + regexp.QuoteMeta(origin+" -> backup:"+dst) +
		` after [0-9.]+ s( \([0-9]+ bytes read\))?: snapctl exited 130 during the copy \(interrupted\)\n$`)
	if code != 1 || !re.MatchString(stdout.String()) {
		t.Fatalf("exit %d, stdout %q; want exit 1 and a line matching %s\nstderr:\n%s", code, stdout.String(), re, stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "replicate.*")); len(left) != 0 {
		t.Errorf("replicate left %v", left)
	}
	l := exec.Command(filepath.Join(dir, "snapctl"), "list")
	l.Env = env
	if out, err := l.CombinedOutput(); err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("snapctl list after the interrupt: %v\n%s", err, out)
	}
}

// TestReplicateBadSettings: a --rate pvcat cannot parse, or a zstd level
// blkcat refuses, is a configuration error (exit 2, the tool's reason),
// found before any snapshot or connection; it was a failed stage (exit 1)
// after the snapshot was made and an empty stream sent to the backup host.
func TestReplicateBadSettings(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	dir := tools(t)
	if !has(t, "pvcat") {
		testutil.Skip(t, "feature pvcat not on this branch yet")
	}
	needFrame(t)
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	// ssh is a stand-in that records being run: it must not be.
	work := t.TempDir()
	ran := filepath.Join(work, "ssh-ran")
	fakeSSH := filepath.Join(work, "ssh")
	if err := os.WriteFile(fakeSSH, []byte("#!/bin/sh\ntouch "+ran+"\ncat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(work, "src.img")
	if err := os.WriteFile(src, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"rate", []string{"--rate", "50X"}, `replicate: invalid --rate '50X' (invalid argument '50X' for '-L': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b)` + "\n"},
		{"zstd level", []string{"--compress", "zstd:99"}, `replicate: invalid --compress 'zstd:99' (invalid -z value 'zstd:99': codec "zstd:99": zstd level must be 1 to 22)` + "\n"},
	} {
		for _, dry := range []bool{false, true} {
			name := tc.name
			args := append([]string{"--ssh", fakeSSH, "--no-snapshot"}, tc.args...)
			if dry {
				name += "/dry-run"
				args = append(args, "-n")
			}
			t.Run(name, func(t *testing.T) {
				cmd := exec.Command(script, append(args, src, "backup", "/srv/copy.img")...)
				cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "TMPDIR="+work)
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				code := sshtest.ExitCode(cmd.Run())
				if code != 2 || stdout.String() != "" || stderr.String() != tc.want {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, %q", code, stdout.String(), stderr.String(), tc.want)
				}
				if _, err := os.Stat(ran); err == nil {
					t.Errorf("ssh ran")
					os.Remove(ran)
				}
			})
		}
	}
}
