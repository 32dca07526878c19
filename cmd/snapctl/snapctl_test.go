package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// snapctl runs the command in-process and returns its exit status, stdout
// and stderr.
func snapctl(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := exitCode(run(context.Background(), args, strings.NewReader(""), &stdout, &stderr), &stderr)
	return code, stdout.String(), stderr.String()
}

// setup mounts a btrfs filesystem with an image file and isolates the
// state directory; it returns the image path.
func setup(tb testing.TB, fs string) (mnt, img string, data []byte) {
	tb.Helper()
	testutil.NeedRoot(tb)
	tb.Setenv("SNAPCTL_STATE_DIR", filepath.Join(tb.TempDir(), "state"))
	switch fs {
	case "btrfs":
		testutil.NeedCmd(tb, "btrfs")
		mnt = testutil.MountFS(tb, 128<<20, "mkfs.btrfs", "-q")
	case "xfs":
		mnt = testutil.MountFS(tb, 320<<20, "mkfs.xfs", "-q", "-m", "reflink=1")
	case "ext4":
		mnt = testutil.MountFS(tb, 64<<20, "mkfs.ext4", "-q")
	}
	img = filepath.Join(mnt, "disk.img")
	data = bytes.Repeat([]byte("snapctl test data\n"), 50000)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return mnt, img, data
}

// listPaths returns the paths `snapctl list --backend b` shows.
func listPaths(tb testing.TB, backend string) []string {
	tb.Helper()
	code, out, errOut := snapctl(tb, "list", "--backend", backend)
	if code != 0 {
		tb.Fatalf("list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "PATH     BACKEND  ORIGIN  AGE  FILL" && !strings.HasPrefix(lines[0], "PATH ") {
		tb.Fatalf("list header %q", lines[0])
	}
	var paths []string
	for _, l := range lines[1:] {
		paths = append(paths, strings.Fields(l)[0])
	}
	return paths
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, 2, "snapctl: missing command\n"},
		{"unknown command", []string{"frobnicate"}, 2, `snapctl: unknown command "frobnicate"`},
		{"create without origin", []string{"create"}, 2, "create: want one ORIGIN, got 0 arguments"},
		{"bad flag", []string{"create", "--bogus", "x"}, 2, "snapctl: create: flag provided but not defined: -bogus\n"},
		{"bad value", []string{"run", "--warn", "abc", "/x", "--", "true"}, 2, `snapctl: run: invalid value "abc" for flag -warn: parse error` + "\n"},
		{"bad backend", []string{"create", "--backend", "zfs", "x"}, 2, `unknown backend "zfs"`},
		// Options wrong whatever ORIGIN is are usage errors too.
		{"bad size", []string{"create", "--size", "lots", "/x"}, 2, `snapctl: create: --size "lots": want N%FREE, N%ORIGIN, N% or a size like 512M` + "\n"},
		{"bad name", []string{"run", "--name", "a/b", "/x", "--", "true"}, 2, `snapctl: run: --name "a/b": a name, not a path` + "\n"},
		{"gc without age", []string{"gc"}, 2, "gc: --older-than is required"},
		{"remove nothing", []string{"remove"}, 2, "remove: want at least one SNAP"},
		{"run without cmd", []string{"run", "/x", "--"}, 2, "run: missing CMD"},
		// An option after ORIGIN is not taken for CMD (which would run
		// "--name" on a snapshot made without the option).
		{"run option after origin", []string{"run", "/x", "--name", "n", "--", "true"}, 2, `snapctl: run: "--name" after ORIGIN: options go before ORIGIN, CMD after --` + "\n"},
		{"run flag after origin", []string{"run", "/x", "-size=8M", "true"}, 2, `snapctl: run: "-size=8M" after ORIGIN`},
		{"run bad fill", []string{"run", "--warn", "99", "/x", "--", "true"}, 2, "--warn <= --max-fill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := snapctl(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr containing %q", code, out, errOut, tc.code, tc.msg)
			}
		})
	}
	code, out, _ := snapctl(t, "--help")
	for _, want := range []string{"  75   run: the snapshot filled", "  125  run: snapctl failed", "  130  interrupted"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--help (exit %d) lacks %q", code, want)
		}
	}
	code, out, errOut := snapctl(t, "--version")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "snapctl ") || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestHelpListsOptions: --help names every option of every command, and
// each one it names is accepted by its command.
func TestHelpListsOptions(t *testing.T) {
	_, help, _ := snapctl(t, "--help")
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	addCreateFlags(fs, &createFlags{})
	var opts [][]string // command, option, value
	fs.VisitAll(func(f *flag.Flag) {
		opts = append(opts, []string{"create", "--" + f.Name, "x"}, []string{"run", "--" + f.Name, "x"})
	})
	opts = append(opts, [][]string{
		{"run", "--interval", "1s"}, {"run", "--warn", "50"}, {"run", "--max-fill", "90"},
		{"run", "--extend"}, {"run", "--grace", "1s"},
		{"list", "--backend", "btrfs"}, {"list", "--json"}, {"remove", "--timeout", "1s"},
		{"gc", "--older-than", "1h"}, {"gc", "--backend", "btrfs"},
	}...)
	for _, o := range opts {
		if !regexp.MustCompile(`(^|\s|\[)` + regexp.QuoteMeta(o[1]) + `\b`).MatchString(help) {
			t.Errorf("--help does not list %s %s", o[0], o[1])
		}
		// The parser takes the option and stops at the bogus flag after it.
		_, _, errOut := snapctl(t, append(o, "--bogus-end")...)
		if !strings.Contains(errOut, "flag provided but not defined: -bogus-end\n") {
			t.Errorf("snapctl %q --bogus-end: stderr %q, want only --bogus-end refused", o, errOut)
		}
	}
}

func TestBtrfsAndReflinkCLI(t *testing.T) {
	for _, tc := range []struct{ fs, backend string }{
		{"btrfs", "btrfs"}, {"xfs", "reflink"}, {"btrfs", "reflink"},
	} {
		t.Run(tc.fs+"/"+tc.backend, func(t *testing.T) {
			_, img, data := setup(t, tc.fs)
			code, out, errOut := snapctl(t, "create", "--backend", tc.backend, img)
			if code != 0 {
				t.Fatalf("create: exit %d: %s", code, errOut)
			}
			snap := strings.TrimSpace(out)
			if got, _ := os.ReadFile(snap); !bytes.Equal(got, data) {
				t.Fatalf("snapshot %s differs from the origin", snap)
			}
			if got := listPaths(t, tc.backend); len(got) != 1 || got[0] != snap {
				t.Fatalf("list shows %v, want [%s]", got, snap)
			}
			if code, _, errOut := snapctl(t, "remove", snap); code != 0 {
				t.Fatalf("remove: exit %d: %s", code, errOut)
			}
			if _, err := os.Stat(snap); !os.IsNotExist(err) {
				t.Errorf("%s still there after remove", snap)
			}
			if got := listPaths(t, tc.backend); len(got) != 0 {
				t.Errorf("list after remove shows %v", got)
			}
		})
	}
}

// fileBackends are the backends tested on the host, with the filesystem
// each runs on.
var fileBackends = []struct{ backend, fs string }{{"btrfs", "btrfs"}, {"reflink", "xfs"}}

func TestBtrfsAndReflinkRun(t *testing.T) {
	for _, fb := range fileBackends {
		t.Run(fb.backend, func(t *testing.T) { testFileRun(t, fb.backend, fb.fs) })
	}
}

func testFileRun(t *testing.T, backend, fs string) {
	_, img, data := setup(t, fs)
	out := filepath.Join(t.TempDir(), "copy")
	noSnapshots := func(t *testing.T) {
		t.Helper()
		// --backend: never run lvs on the host.
		if got := listPaths(t, backend); len(got) != 0 {
			t.Errorf("snapshots left behind: %v", got)
		}
	}
	t.Run("success", func(t *testing.T) {
		// $SNAP and {} both name the snapshot.
		code, _, errOut := snapctl(t, "run", "--backend", backend, img, "--", "sh", "-c", `test "$SNAP" = "$1" && cat "$SNAP" > `+out, "sh", "{}")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
			t.Errorf("copy differs from the origin")
		}
		noSnapshots(t)
	})
	t.Run("failing command", func(t *testing.T) {
		code, _, errOut := snapctl(t, "run", img, "--", "sh", "-c", "exit 3")
		if code != 3 || errOut != "" {
			t.Fatalf("exit %d, stderr %q; want CMD's 3, quiet", code, errOut)
		}
		noSnapshots(t)
	})
	t.Run("command not found", func(t *testing.T) {
		code, _, errOut := snapctl(t, "run", img, "--", "/nonexistent/cmd")
		if code != 127 || !strings.Contains(errOut, "/nonexistent/cmd") {
			t.Fatalf("exit %d, stderr %q; want 127", code, errOut)
		}
		noSnapshots(t)
	})
	t.Run("command killed", func(t *testing.T) {
		code, _, errOut := snapctl(t, "run", img, "--", "sh", "-c", "kill -KILL $$")
		if code != 128+9 || errOut != "snapctl: run: CMD killed by signal 9 (SIGKILL)\n" {
			t.Fatalf("exit %d, stderr %q; want 137", code, errOut)
		}
		noSnapshots(t)
	})
	t.Run("origin not found", func(t *testing.T) {
		code, _, errOut := snapctl(t, "run", img+".missing", "--", "true")
		if code != 125 || !strings.Contains(errOut, "disk.img.missing: origin not found") {
			t.Fatalf("exit %d, stderr %q; want 125", code, errOut)
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			// A real process: snapctl is signalled while CMD runs.
			started := filepath.Join(t.TempDir(), "started")
			cmd := exec.Command(testutil.Tool(t, "snapctl"), "run", img, "--", "sh", "-c",
				`echo $$ > `+started+`.tmp; mv `+started+`.tmp `+started+`; sleep 60; echo not stopped`)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid []byte
			for i := 0; i < 200 && len(pid) == 0; i++ {
				time.Sleep(50 * time.Millisecond)
				pid, _ = os.ReadFile(started)
			}
			if len(pid) == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("CMD never started: %s", stderr.String())
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if cmd.ProcessState.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted by "+sig.String()) {
				t.Fatalf("%v: exit %d, stderr %q; want 130", err, cmd.ProcessState.ExitCode(), stderr.String())
			}
			if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err == nil {
				t.Errorf("CMD (pid %s) still running", strings.TrimSpace(string(pid)))
			}
			noSnapshots(t)
		})
	}
}

func TestBtrfsAndReflinkGC(t *testing.T) {
	for _, fb := range fileBackends {
		t.Run(fb.backend, func(t *testing.T) { testFileGC(t, fb.backend, fb.fs) })
	}
}

func testFileGC(t *testing.T, backend, fs string) {
	_, img, _ := setup(t, fs)
	var snaps []string
	for i := 0; i < 2; i++ {
		code, out, errOut := snapctl(t, "create", "--backend", backend, img)
		if code != 0 {
			t.Fatalf("create: exit %d: %s", code, errOut)
		}
		snaps = append(snaps, strings.TrimSpace(out))
	}
	if code, out, errOut := snapctl(t, "gc", "--backend", backend, "--older-than", "1h"); code != 0 || out != "" {
		t.Fatalf("gc 1h: exit %d, stdout %q, stderr %q; want nothing removed", code, out, errOut)
	}
	time.Sleep(1100 * time.Millisecond)
	code, out, errOut := snapctl(t, "gc", "--backend", backend, "--older-than", "1s")
	if want := "removed " + snaps[0] + "\nremoved " + snaps[1] + "\n"; code != 0 || out != want {
		t.Fatalf("gc 1s: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	if got := listPaths(t, backend); len(got) != 0 {
		t.Errorf("left after gc: %v", got)
	}
}

// TestCreateErrorsCLI covers the errors of issue item 7 that need no LVM
// (the LVM ones run in the QEMU guest): one line naming the operand, exit
// 1, nothing changed.
func TestCreateErrorsCLI(t *testing.T) {
	mnt, img, _ := setup(t, "xfs")
	ext4, ext4img, _ := setup(t, "ext4")
	if code, _, errOut := snapctl(t, "create", "--name", "taken", img); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"origin not found", []string{"create", mnt + "/nope.img"}, "snapctl: create " + mnt + "/nope.img: " + mnt + "/nope.img: origin not found\n"},
		{"name exists", []string{"create", "--name", "taken", img}, "snapctl: create " + img + ": snapshot " + mnt + "/.snapctl/taken: name already exists\n"},
		{"no reflink", []string{"create", ext4img}, "snapctl: create " + ext4img + ": clone " + ext4img + ": filesystem does not support reflink"},
		{"freeze own filesystem", []string{"create", "--freeze", mnt, img}, "snapctl: create " + img + ": --freeze " + mnt + ": the snapshot itself is written to that filesystem (" + mnt + "/.snapctl); freezing it would hang\n"},
		// Not "does not support reflink": XFS does, --dir is wrong.
		{"dir elsewhere", []string{"create", "--dir", ext4 + "/snaps", img}, "snapctl: create " + img + ": clone " + img + " into " + ext4 + "/snaps: " +
			"not on the same filesystem (--dir must be on the filesystem of the origin)"},
		{"size on reflink", []string{"create", "--size", "1G", img}, "snapctl: create " + img + ": --size does not apply to backend reflink"},
		{"remove foreign", []string{"remove", img}, "snapctl: remove " + img + ": not a snapshot made by snapctl\n"},
		// One line per failed SNAP, each a snapctl message.
		{"remove two foreign", []string{"remove", img, ext4img}, "snapctl: remove " + img + ": not a snapshot made by snapctl\n" +
			"snapctl: remove " + ext4img + ": not a snapshot made by snapctl\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tree(t, mnt, ext4, os.Getenv("SNAPCTL_STATE_DIR"))
			code, out, errOut := snapctl(t, tc.args...)
			if code != 1 || out != "" || !strings.HasPrefix(errOut, tc.msg) || strings.Count(errOut, "\n") != max(1, strings.Count(tc.msg, "\n")) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line starting %q", code, out, errOut, tc.msg)
			}
			if after := tree(t, mnt, ext4, os.Getenv("SNAPCTL_STATE_DIR")); after != before {
				t.Errorf("files changed:\n%s\n%s", before, after)
			}
		})
	}
}

// TestReflinkCreateInterrupted: a SIGINT while create works (here from the
// --pre hook) lets the snapshot be made, then removes it: exit 130.
func TestReflinkCreateInterrupted(t *testing.T) {
	mnt, img, _ := setup(t, "xfs")
	cmd := exec.Command(testutil.Tool(t, "snapctl"), "create", "--pre", "kill -INT $PPID; sleep 0.5", img)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 130 || stdout.Len() != 0 ||
		stderr.String() != "snapctl: create "+img+": interrupted; the snapshot was removed\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if ents, _ := os.ReadDir(filepath.Join(mnt, ".snapctl")); len(ents) != 0 {
		t.Errorf("left in .snapctl: %v", ents)
	}
	if got := listPaths(t, "reflink"); len(got) != 0 {
		t.Errorf("list shows %v", got)
	}
}

func tree(tb testing.TB, dirs ...string) string {
	tb.Helper()
	var b strings.Builder
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				b.WriteString(p + " ")
			}
			return nil
		})
	}
	return b.String()
}

func TestNotRoot(t *testing.T) {
	mnt, img, _ := setup(t, "xfs")
	before := tree(t, mnt)
	// nobody must be able to execute the binary: copy it out of the
	// private build directory.
	dir, err := os.MkdirTemp("", "snapctl-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "snapctl")
	testutil.Run(t, "cp", testutil.Tool(t, "snapctl"), bin)
	for _, args := range [][]string{{"create", img}, {"list"}, {"remove", img}, {"run", img, "--", "true"}, {"gc", "--older-than", "1h"}} {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		want, code := "must run as root", 1
		if args[0] == "run" {
			code = 125
		}
		if cmd.ProcessState.ExitCode() != code || !strings.Contains(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v as nobody: exit %d, stderr %q; want %d and %q", args, cmd.ProcessState.ExitCode(), stderr.String(), code, want)
		}
	}
	if after := tree(t, mnt); after != before {
		t.Errorf("files changed:\n%s\n%s", before, after)
	}
}

// TestRunNohup: signals snapctl was started with ignored (nohup, a
// background job of a script) stay ignored, for snapctl and CMD alike: a
// SIGHUP from the closed login session must not stop the copy.
func TestRunNohup(t *testing.T) {
	_, img, _ := setup(t, "xfs")
	started := filepath.Join(t.TempDir(), "started")
	cmd := exec.Command("sh", "-c", `trap "" HUP INT; exec "$0" run "$1" -- sh -c "touch $2; sleep 1; echo CMD done"`,
		testutil.Tool(t, "snapctl"), img, started)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 || stdout.String() != "CMD done\n" || stderr.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, CMD done, quiet", code, stdout.String(), stderr.String())
	}
	if got := listPaths(t, "reflink"); len(got) != 0 {
		t.Errorf("snapshots left behind: %v", got)
	}

}

// TestRelativeDir: a relative --dir (and ORIGIN) still gives the snapshot
// an absolute path, which run removes afterwards and list shows usable
// from any directory (cron's gc runs in /).
func TestRelativeDir(t *testing.T) {
	for _, fb := range fileBackends {
		t.Run(fb.backend, func(t *testing.T) {
			mnt, _, _ := setup(t, fb.fs)
			t.Chdir(mnt)
			code, _, errOut := snapctl(t, "run", "--backend", fb.backend, "--dir", "snaps", "disk.img", "--", "sh", "-c", `case "$SNAP" in /*) ;; *) exit 9;; esac`)
			if code != 0 || errOut != "" {
				t.Errorf("run: exit %d, stderr %q; want 0, quiet", code, errOut)
			}
			code, out, errOut := snapctl(t, "create", "--backend", fb.backend, "--dir", "snaps", "disk.img")
			if snap := strings.TrimSpace(out); code != 0 || !strings.HasPrefix(snap, mnt+"/snaps/") {
				t.Fatalf("create: exit %d, stdout %q, stderr %q; want a path in %s/snaps", code, out, errOut, mnt)
			}
			t.Chdir("/")
			if got := listPaths(t, fb.backend); len(got) != 1 || !strings.HasPrefix(got[0], mnt+"/snaps/") {
				t.Fatalf("list shows %v", got)
			}
			if code, out, errOut := snapctl(t, "gc", "--backend", fb.backend, "--older-than", "0s"); code != 0 || !strings.HasPrefix(out, "removed "+mnt+"/snaps/") {
				t.Errorf("gc: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

// TestGCSparesRunning: gc, however short --older-than, leaves alone the
// snapshot of a run that is still going (a backup longer than the cron
// job's age), and removes it once that snapctl is gone without removing it.
func TestGCSparesRunning(t *testing.T) {
	for _, fb := range fileBackends {
		t.Run(fb.backend, func(t *testing.T) {
			_, img, _ := setup(t, fb.fs)
			dir := t.TempDir()
			started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
			cmd := exec.Command(testutil.Tool(t, "snapctl"), "run", "--backend", fb.backend, img, "--", "sh", "-c",
				`touch `+started+`; while [ ! -e `+release+` ]; do sleep 0.05; done; cat "$SNAP" >/dev/null`)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 200; i++ {
				if _, err := os.Stat(started); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			snaps := listPaths(t, fb.backend)
			code, out, errOut := snapctl(t, "gc", "--backend", fb.backend, "--older-than", "0s")
			if want := "snapctl: gc: kept " + strings.Join(snaps, "") + ": snapctl run (pid " + fmt.Sprint(cmd.Process.Pid) + ") still uses it\n"; code != 0 || out != "" || errOut != want || len(snaps) != 1 {
				t.Errorf("gc during the run: exit %d, stdout %q, stderr %q; want 0, nothing removed, %q", code, out, errOut, want)
			}
			os.WriteFile(release, nil, 0o644)
			cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("run: exit %d, stderr %q", code, stderr.String())
			}

			// A run killed with SIGKILL leaves its snapshot: gc takes it.
			os.Remove(started)
			cmd = exec.Command(testutil.Tool(t, "snapctl"), "run", "--backend", fb.backend, img, "--", "sh", "-c",
				`echo $$ > `+started+`.tmp; mv `+started+`.tmp `+started+`; sleep 60`)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid []byte
			for i := 0; i < 200 && len(pid) == 0; i++ {
				time.Sleep(50 * time.Millisecond)
				pid, _ = os.ReadFile(started)
			}
			cmd.Process.Kill()
			cmd.Wait()
			// CMD leads its own process group, which outlives snapctl.
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				syscall.Kill(-n, syscall.SIGKILL)
			}
			snaps = listPaths(t, fb.backend)
			if code, out, errOut := snapctl(t, "gc", "--backend", fb.backend, "--older-than", "0s"); code != 0 || len(snaps) != 1 || out != "removed "+snaps[0]+"\n" {
				t.Errorf("gc after the run died: exit %d, stdout %q, stderr %q; want %v removed", code, out, errOut, snaps)
			}
		})
	}
}
