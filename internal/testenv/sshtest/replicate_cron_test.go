package sshtest_test

import (
	"bufio"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestReplicateCron runs scripts/replicate.sh as cron and systemd run it,
// from the client namespace of a Lab through real ssh: every failure, even
// one before the pipeline, ends with exit 1 and one FAILED line naming the
// stage, the same line in --log; -q prints nothing on success; --metrics
// writes a node_exporter textfile; --lock logs a skipped run; -n prints a
// script that runs; --config-dir leaves the backup's extra files alone
// unless --config-delete.
func TestReplicateCron(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "rsync", "unshare", "flock")
	dir := tools(t)
	if !has(t, "snapctl") || !has(t, "pvcat") {
		testutil.Skip(t, "snapctl and pvcat not on this branch yet")
	}
	needFrame(t)
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "replicate.sh")
	work := t.TempDir()
	src := filepath.Join(work, "src.img")
	data := make([]byte, 8<<20)
	rand.Read(data[:4<<20]) // half random, half zeros
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sshtest.BLAKE3(t, src)
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "hosts"), []byte("primary 0 backuppc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	remoteCfg := t.TempDir()
	lab := sshtest.New(t, dir, []string{"backup"}, sshtest.WithBind("backup", cfg, remoteCfg))
	tmp := filepath.Join(work, "tmp") // replicate's TMPDIR: must end empty
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	state := "SNAPCTL_STATE_DIR=" + filepath.Join(work, "snapstate")

	// run runs replicate.sh --ssh "$SSH" ARGS... in the client namespace.
	run := func(t *testing.T, args ...string) sshtest.Result {
		t.Helper()
		env := []string{"SCRIPT=" + script, "TMPDIR=" + tmp, state}
		var words []string
		for i, a := range args {
			env = append(env, "A"+strconv.Itoa(i)+"="+a)
			words = append(words, `"$A`+strconv.Itoa(i)+`"`)
		}
		r := lab.Run(lab.Client, `"$SCRIPT" --ssh "$SSH" `+strings.Join(words, " "), 2*time.Minute, env...)
		if strings.Contains(r.Stderr, "sed: ") || strings.Contains(r.Stderr, "unbound variable") {
			t.Errorf("the script itself failed:\n%s", r.Stderr)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("replicate left %v in its TMPDIR", left)
		}
		return r
	}
	target := func(t *testing.T) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "copy.img")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// failed checks one FAILED line on stdout naming stage, exit 1, and
	// the same line, time-stamped, as the only line of the log.
	failed := func(t *testing.T, r sshtest.Result, log, what, stage string) string {
		t.Helper()
		re := regexp.MustCompile(`^replicate: FAILED ` + regexp.QuoteMeta(what) + ` after [0-9.]+ s( \([0-9]+ bytes read\))?: ` + stage + "\n$")
		if r.Code != 1 || !re.MatchString(r.Stdout) {
			t.Fatalf("exit %d, stdout %q; want exit 1 and a line matching %s\nstderr:\n%s", r.Code, r.Stdout, re, r.Stderr)
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("no log: %v", err)
		}
		logRe := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z ` + regexp.QuoteMeta(r.Stdout) + "$")
		if !logRe.Match(b) {
			t.Fatalf("log %q, want the stdout line %q time-stamped", b, r.Stdout)
		}
		return r.Stdout
	}

	t.Run("early failures", func(t *testing.T) {
		missing := filepath.Join(work, "no-such.img")
		for _, tc := range []struct {
			name, src, stage string
			args             []string
		}{
			{"source missing", missing, regexp.QuoteMeta("source: '" + missing + "' does not exist"), []string{"--no-snapshot"}},
			{"source missing, snapshot", missing, regexp.QuoteMeta("source: '" + missing + "' does not exist"), nil},
			{"source is a directory", work, regexp.QuoteMeta("source: '" + work + "' is neither a block device nor a regular file"), []string{"--no-snapshot"}},
			// An image file has no LVM snapshot: snapctl fails before the
			// pipeline, as with a full VG, no reflink, or not root.
			{"snapshot impossible", src, `snapshot: snapctl exited 125 before the copy ran: run: create .*backend lvm needs a logical volume.*`, []string{"--snapshot-opt", "--backend lvm"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, quiet := range []bool{false, true} {
					log := filepath.Join(t.TempDir(), "r.log")
					dst := target(t)
					args := append([]string{"--log", log}, tc.args...)
					if quiet {
						args = append(args, "-q")
					}
					r := run(t, append(args, tc.src, "backup", dst)...)
					failed(t, r, log, tc.src+" -> backup:"+dst, tc.stage)
				}
			})
		}
	})

	t.Run("quiet and metrics", func(t *testing.T) {
		metrics := filepath.Join(t.TempDir(), "blkpipe.prom")
		log := filepath.Join(t.TempDir(), "r.log")
		dst := target(t)
		r := run(t, "-q", "--metrics", metrics, "--log", log, "--no-snapshot", src, "backup", dst)
		if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
			t.Fatalf("-q run: exit %d, stdout %q, stderr %q; want 0 and no output", r.Code, r.Stdout, r.Stderr)
		}
		if got := sshtest.BLAKE3(t, dst); got != want {
			t.Fatalf("target blake3 %s, source %s", got, want)
		}
		if b, _ := os.ReadFile(log); !regexp.MustCompile(`^\S+ replicate: ok .* verified blake3 ` + want + ` in .*\n$`).Match(b) {
			t.Errorf("log after a -q run: %q", b)
		}
		labels := `{source="` + src + `",host="backup",target="` + dst + `",path="full"}`
		m := parseMetrics(t, metrics)
		ok := m["blkpipe_replicate_last_success_timestamp_seconds"+labels]
		if now := float64(time.Now().Unix()); ok < now-120 || ok > now+1 {
			t.Errorf("last success %v, now %v", ok, now)
		}
		for name, want := range map[string]float64{
			"blkpipe_replicate_last_run_result":     0,
			"blkpipe_replicate_last_run_read_bytes": float64(len(data)),
		} {
			if got, ok := m[name+labels]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", name+labels, got, ok, want)
			}
		}
		// Framed, lz4: the random half goes as is, the zero half as
		// ZERO records.
		if sent := m["blkpipe_replicate_last_run_sent_bytes"+labels]; sent < 4<<20 || sent > 5<<20 {
			t.Errorf("sent bytes %v, want about 4 MiB", sent)
		}
		if d, ok := m["blkpipe_replicate_last_run_duration_seconds"+labels]; !ok || d < 0 || d > 120 {
			t.Errorf("duration %v (present %v)", d, ok)
		}
		if _, err := os.Stat(metrics + ".tmp"); err == nil {
			t.Errorf("%s.tmp left behind", metrics)
		}

		// A failure: -q prints the FAILED line (and only it on stdout),
		// the result turns 1, the last success time stays.
		missing := filepath.Join(t.TempDir(), "no-dir", "copy.img")
		os.Remove(log)
		r = run(t, "-q", "--metrics", metrics, "--log", log, "--no-snapshot", src, "backup", missing)
		failed(t, r, log, src+" -> backup:"+missing, `(blkcat exited [0-9]+, )?(pvcat exited [0-9]+, )?ssh/blkwrite exited 1`)
		if !strings.Contains(r.Stderr, "replicate:   blkwrite: failed to open '"+missing+"'") {
			t.Errorf("stderr does not show blkwrite's error:\n%s", r.Stderr)
		}
		labels = `{source="` + src + `",host="backup",target="` + missing + `",path="full"}`
		m = parseMetrics(t, metrics)
		if got := m["blkpipe_replicate_last_run_result"+labels]; got != 1 {
			t.Errorf("result after a failure %v, want 1", got)
		}
		if got := m["blkpipe_replicate_last_success_timestamp_seconds"+labels]; got != ok {
			t.Errorf("last success after a failure %v, want the previous %v", got, ok)
		}
	})

	t.Run("lock", func(t *testing.T) {
		lock := filepath.Join(t.TempDir(), "replicate.lock")
		f, err := os.Create(lock)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(t.TempDir(), "r.log")
		dst := target(t)
		r := run(t, "-q", "--lock", lock, "--log", log, "--no-snapshot", src, "backup", dst)
		line := "replicate: SKIPPED " + src + " -> backup:" + dst + ": another run holds the lock " + lock + "\n"
		if r.Code != 1 || r.Stdout != line {
			t.Fatalf("exit %d, stdout %q; want 1, %q\nstderr:\n%s", r.Code, r.Stdout, line, r.Stderr)
		}
		if b, _ := os.ReadFile(log); !strings.HasSuffix(string(b), "Z "+line) || strings.Count(string(b), "\n") != 1 {
			t.Errorf("log %q, want %q time-stamped", b, line)
		}
		if fi, _ := os.Stat(dst); fi.Size() != 0 {
			t.Errorf("a skipped run wrote %d bytes", fi.Size())
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		if r := run(t, "-q", "--lock", lock, "--no-snapshot", src, "backup", dst); r.Code != 0 {
			t.Fatalf("with the lock free: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	// -n prints a script that can be pasted: run it, and the copy happens.
	t.Run("dry run pastes", func(t *testing.T) {
		dst := target(t)
		r := run(t, "-n", "--no-snapshot", "--rate", "100M", src, "backup", dst)
		if r.Code != 0 || strings.Contains(r.Stdout, tmp) {
			t.Fatalf("exit %d, output names replicate's TMPDIR %s:\n%s%s", r.Code, tmp, r.Stdout, r.Stderr)
		}
		p := lab.Run(lab.Client, r.Stdout, time.Minute)
		if p.Code != 0 || !strings.HasPrefix(p.Stderr, "messages in ") {
			t.Fatalf("pasted: exit %d\n%s%s", p.Code, p.Stdout, p.Stderr)
		}
		msgs := strings.TrimSpace(strings.TrimPrefix(p.Stderr, "messages in "))
		t.Cleanup(func() { os.RemoveAll(msgs) })
		if b, _ := os.ReadFile(filepath.Join(msgs, "remote.err")); !strings.Contains(string(b), "blkwrite: verified blake3 "+want) {
			t.Errorf("remote.err: %q", b)
		}
		if got := sshtest.BLAKE3(t, dst); got != want {
			t.Fatalf("target sha256 %s, source %s", got, want)
		}
	})

	// The display (forced: stderr is not a terminal here) counts source
	// bytes to 100 % while --rate limits the wire.
	t.Run("progress with rate", func(t *testing.T) {
		dst := target(t)
		r := run(t, "--progress", "--rate", "100M", "--no-snapshot", src, "backup", dst)
		if r.Code != 0 || !strings.Contains(r.Stderr, "100%") || !strings.Contains(r.Stderr, " 8.0 MiB ") {
			t.Fatalf("exit %d, stderr %q; want the display at 100%% of 8 MiB\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
		}
		if got := sshtest.BLAKE3(t, dst); got != want {
			t.Fatalf("target sha256 %s, source %s", got, want)
		}
	})

	t.Run("config-delete", func(t *testing.T) {
		stale := filepath.Join(remoteCfg, "stale")
		if err := os.WriteFile(stale, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, del := range []bool{false, true} {
			args := []string{"-q", "--config-dir", cfg, "--no-snapshot", src, "backup", target(t)}
			if del {
				args = append([]string{"--config-delete"}, args...)
			}
			if r := run(t, args...); r.Code != 0 {
				t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			if b, err := os.ReadFile(filepath.Join(remoteCfg, "hosts")); err != nil || string(b) != "primary 0 backuppc\n" {
				t.Errorf("backup's hosts file: %q, %v", b, err)
			}
			if _, err := os.Stat(stale); (err == nil) == del {
				t.Errorf("--config-delete %v: stale file on the backup host: %v", del, err)
			}
		}
	})
}

// parseMetrics reads a Prometheus textfile: every sample by name and
// labels, checking that each sample's name has HELP and TYPE lines before it.
func parseMetrics(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]float64{}
	help, typ := map[string]bool{}, map[string]bool{}
	sample := regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? (\S+)$`)
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch f := strings.Fields(line); {
		case len(f) >= 4 && f[0] == "#" && f[1] == "HELP":
			help[f[2]] = true
		case len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && f[3] == "gauge":
			typ[f[2]] = true
		default:
			g := sample.FindStringSubmatch(line)
			if g == nil {
				t.Fatalf("%s: not a sample: %q", path, line)
			}
			if !help[g[1]] || !typ[g[1]] {
				t.Errorf("%s: %s without HELP and TYPE gauge before it", path, g[1])
			}
			v, err := strconv.ParseFloat(g[3], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			m[g[1]+g[2]] = v
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}
