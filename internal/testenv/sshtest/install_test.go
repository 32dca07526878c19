package sshtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestInstall runs scripts/install.sh with DESTDIR into a temporary
// directory: the four tools run --version, replicate.sh --help, the docs
// and examples are there, the completion script completes, a snapctl
// earlier on PATH is warned about, and a snapctl that is not blkpipe's is
// never overwritten.
func TestInstall(t *testing.T) {
	testutil.NeedCmd(t, "bash", "go", "git", "install")
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "install.sh")
	const prefix = "/opt/blkpipe-test"
	work := t.TempDir()
	dest := filepath.Join(work, "stage")
	// A snapd-like snapctl first on PATH.
	fake := filepath.Join(work, "snapd")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, "snapctl"), []byte("#!/bin/sh\necho snapd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	install := func(t *testing.T) sshtest.Result {
		t.Helper()
		cmd := exec.Command(script, prefix)
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PATH="+fake+":"+prefix+"/bin:"+os.Getenv("PATH"), "TMPDIR="+work)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return sshtest.Result{Code: sshtest.ExitCode(cmd.Run()), Stdout: stdout.String(), Stderr: stderr.String()}
	}

	r := install(t)
	if r.Code != 0 {
		t.Fatalf("install.sh %s: exit %d\n%s%s", prefix, r.Code, r.Stdout, r.Stderr)
	}
	if want := "install.sh: warning: " + fake + "/snapctl comes before " + prefix + "/bin/snapctl on PATH"; !strings.Contains(r.Stderr, want) {
		t.Errorf("no warning about the other snapctl; stderr:\n%s", r.Stderr)
	}
	root := filepath.Join(dest, prefix)
	for _, tool := range []string{"blkcat", "blkwrite", "pvcat", "snapctl"} {
		out, err := exec.Command(filepath.Join(root, "bin", tool), "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), tool+" ") {
			t.Errorf("%s --version: %v, %q", tool, err, out)
		}
		// bash-completion loads completions/<tool> and then completes.
		c := filepath.Join(root, "share", "bash-completion", "completions", tool)
		out, err = exec.Command("bash", "-c", `. "$1"; COMP_WORDS=("$2" --ver); COMP_CWORD=1; _blkpipe "$2"; echo "${COMPREPLY[*]}"`, "sh", c, tool).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "--version" {
			t.Errorf("completion of %s --ver: %v, %q", tool, err, out)
		}
	}
	if out, err := exec.Command(filepath.Join(root, "bin", "replicate.sh"), "--help").Output(); err != nil || !strings.HasPrefix(string(out), "Usage: replicate.sh ") {
		t.Errorf("installed replicate.sh --help: %v, %q", err, out)
	}
	for _, page := range []string{"blkcat", "blkwrite", "pvcat", "snapctl", "replicate.sh"} {
		// install_man: the pages internal/manpage keeps equal to --help.
		if b, err := os.ReadFile(filepath.Join(root, "share", "man", "man1", page+".1")); err != nil || !strings.Contains(string(b), "\n.SH NAME\n") {
			t.Errorf("man page %s.1: %v", page, err)
		}
	}
	doc := filepath.Join(root, "share", "doc", "blkpipe")
	for _, f := range []string{"README.md", "LICENSE", "VERSION", "replicate.conf", "blkpipe-replicate@.service", "blkpipe-replicate@.timer", "blkpipe-notify@.service", "blkpipe-replicate.cron"} {
		if fi, err := os.Stat(filepath.Join(doc, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The service runs the replicate.sh install.sh installs (for PREFIX
	// /usr/local).
	unit, err := os.ReadFile(filepath.Join(doc, "blkpipe-replicate@.service"))
	if err != nil || !strings.Contains(string(unit), "\nExecStart=/usr/local/bin/replicate.sh ") {
		t.Errorf("the service does not run /usr/local/bin/replicate.sh: %v", err)
	}

	// snapd's snapctl where ours would go: refused, left as it was.
	other := filepath.Join(root, "bin", "snapctl")
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho snapd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = install(t)
	if r.Code != 1 || !strings.Contains(r.Stderr, "install.sh: "+other+" exists and is not blkpipe's") {
		t.Errorf("over a foreign snapctl: exit %d\n%s", r.Code, r.Stderr)
	}
	if b, _ := os.ReadFile(other); string(b) != "#!/bin/sh\necho snapd\n" {
		t.Errorf("the foreign snapctl was overwritten")
	}
	if left, _ := filepath.Glob(filepath.Join(work, "blkpipe-install.*")); len(left) != 0 {
		t.Errorf("install.sh left %v", left)
	}
}
