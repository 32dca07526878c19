// Package sshtest builds a small network of "hosts" on one machine for
// end-to-end tests of blkpipe over real ssh: a client network namespace
// (the machine holding the source volume) joined by a veth pair to each
// server namespace (the backup hosts), each server running its own sshd
// with a host key, a client key and an sshd_config made by the test.
//
// Safety: the addresses (10.213.N.1/30 on the client side, .2 on the
// server side) exist only inside the namespaces; every client command runs
// through `ip netns exec`, so nothing in the host namespace ever connects to
// them. Teardown, registered with tb.Cleanup, kills sshd and every process
// left in the lab's namespaces by PID and deletes the namespaces (which
// removes their veths), even when the test fails.
//
// A Lab needs root, ip (iproute2), sshd, ssh, ssh-keygen and bash; New skips
// (or fails in CI) when one is missing.
package sshtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// SSHD is the sshd binary the lab runs.
const SSHD = "/usr/sbin/sshd"

// Lab is a client namespace and the server hosts reachable from it.
//
// Commands run with Lab.Bash see these environment variables:
//
//	PATH  the tools directory first, then the system directories
//	SSH   "ssh -F <lab ssh_config>", so `$SSH backup blkwrite T` works
//	LC_ALL=C
//
// and the servers' sshd gives sessions the same PATH (sshd_config SetEnv),
// so a remote `blkwrite` is the one built by the test.
type Lab struct {
	tb testing.TB
	// Dir holds the keys, configs and logs; removed at the end of the test.
	Dir string
	// Client is the client namespace's name.
	Client string
	// Key is the client's private key (ed25519, no passphrase).
	Key string
	// SSHConfig is an ssh_config naming every host by its name.
	SSHConfig string
	// Path is the PATH commands in the lab run with.
	Path string

	hosts []*Host
	binds []bind
}

// Host is one server namespace with its sshd.
type Host struct {
	// Name is the host's ssh alias in the lab's ssh_config.
	Name string
	// NS is its network namespace.
	NS string
	// Addr is its address; ClientAddr is the client's address on the
	// same veth pair.
	Addr, ClientAddr string
	// ClientDev is the client-side veth towards this host (where tc
	// shapes the data direction).
	ClientDev string
	// Port is sshd's port.
	Port int
	// AuthorizedKeys is the file sshd reads the client's key from; it
	// may be rewritten between connections (SetKeyOptions).
	AuthorizedKeys string

	lab  *Lab
	sshd *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{}
}

var labSeq atomic.Int64

// Option configures a Lab.
type Option func(*Lab)

// WithBind gives host its own view of path: its sshd (and every session)
// runs in a private mount namespace where dir is bind-mounted on path. As
// all namespaces share one filesystem, this is how a test sees what an
// rsync to "the same path on the backup host" wrote.
func WithBind(host, path, dir string) Option {
	return func(l *Lab) {
		l.binds = append(l.binds, bind{host, path, dir})
	}
}

type bind struct{ host, path, dir string }

// New builds a lab with one client namespace and one server namespace per
// name in hosts, each with its own veth pair and sshd. toolDir is put first
// on PATH on both sides. Everything is torn down when the test ends.
func New(tb testing.TB, toolDir string, hosts []string, opts ...Option) *Lab {
	tb.Helper()
	testutil.NeedRoot(tb)
	testutil.NeedCmd(tb, "ip", "ssh", "ssh-keygen", "bash")
	if _, err := os.Stat(SSHD); err != nil {
		testutil.Skip(tb, "needs "+SSHD+" (openssh-server)")
	}
	if len(hosts) == 0 || len(hosts) > 200 {
		tb.Fatalf("sshtest.New: %d hosts", len(hosts))
	}
	// sshd insists on its privilege separation directory; the
	// openssh-server package creates it at boot, a container may not have.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		tb.Fatalf("create /run/sshd: %v", err)
	}

	id := fmt.Sprintf("bp%d-%d", os.Getpid()%100000, labSeq.Add(1))
	l := &Lab{
		tb:     tb,
		Dir:    tb.TempDir(),
		Client: id + "-client",
		Path:   toolDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
	for _, o := range opts {
		o(l)
	}
	tb.Cleanup(l.teardown) // registered first: runs after anything the test adds
	l.Key = filepath.Join(l.Dir, "id_ed25519")
	testutil.Run(tb, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "blkpipe-test", "-f", l.Key)
	l.mustIP("netns", "add", l.Client)
	l.mustIP("-n", l.Client, "link", "set", "lo", "up")

	var cfg strings.Builder
	for i, name := range hosts {
		h := &Host{
			Name:       name,
			NS:         fmt.Sprintf("%s-%s", id, name),
			Addr:       fmt.Sprintf("10.213.%d.2", i+1),
			ClientAddr: fmt.Sprintf("10.213.%d.1", i+1),
			ClientDev:  fmt.Sprintf("to-%d", i+1),
			Port:       20000 + (os.Getpid()+i*7919)%40000,
			lab:        l,
		}
		l.hosts = append(l.hosts, h)
		l.mustIP("netns", "add", h.NS)
		l.mustIP("-n", h.NS, "link", "set", "lo", "up")
		// Created directly inside the namespaces: no interface name ever
		// exists in the host namespace, so parallel labs cannot collide.
		l.mustIP("link", "add", h.ClientDev, "netns", l.Client, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		l.mustIP("-n", l.Client, "addr", "add", h.ClientAddr+"/30", "dev", h.ClientDev)
		l.mustIP("-n", h.NS, "addr", "add", h.Addr+"/30", "dev", "eth0")
		l.mustIP("-n", l.Client, "link", "set", h.ClientDev, "up")
		l.mustIP("-n", h.NS, "link", "set", "eth0", "up")
		fmt.Fprintf(&cfg, "Host %s\n\tHostName %s\n\tPort %d\n", name, h.Addr, h.Port)
	}
	fmt.Fprintf(&cfg, `Host *
	User root
	IdentityFile %s
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	GlobalKnownHostsFile /dev/null
	ConnectTimeout 5
	ConnectionAttempts 1
	BatchMode yes
	ServerAliveInterval 5
	ServerAliveCountMax 3
	LogLevel ERROR
`, l.Key)
	l.SSHConfig = filepath.Join(l.Dir, "ssh_config")
	l.writeFile(l.SSHConfig, cfg.String(), 0o600)
	for _, h := range l.hosts {
		h.start()
	}
	for _, h := range l.hosts {
		h.waitReady()
	}
	return l
}

// Host returns the host called name, failing the test if there is none.
func (l *Lab) Host(name string) *Host {
	l.tb.Helper()
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	l.tb.Fatalf("sshtest: no host %q", name)
	return nil
}

// SSH is the ssh command line (without host) that reaches the lab's hosts
// from the client namespace.
func (l *Lab) SSH() string { return "ssh -F " + l.SSHConfig }

// Shape limits the client's traffic towards host (the data direction of
// `blkcat | ssh host blkwrite`) with a token bucket: tc qdisc tbf. rate is
// tc's syntax, e.g. "1gbit" or "20mbit". netem is not available in every
// kernel; tbf is.
func (l *Lab) Shape(host, rate string) {
	l.tb.Helper()
	h := l.Host(host)
	testutil.NeedCmd(l.tb, "tc")
	// burst must hold at least rate/HZ; 1 MiB is ample for up to 10gbit
	// at HZ=1000 and keeps small rates smooth enough for a test.
	testutil.Run(l.tb, "ip", "netns", "exec", l.Client, "tc", "qdisc", "replace", "dev", h.ClientDev,
		"root", "tbf", "rate", rate, "burst", "1mb", "latency", "200ms")
}

// Bash returns a command running script with `bash -c` inside namespace ns
// (l.Client or a host's NS) with `set -o pipefail` in effect, the lab's
// PATH and SSH, and env (NAME=VALUE) added. Passing values through env
// rather than into the script text avoids quoting. The command is killed
// when ctx ends.
func (l *Lab) Bash(ctx context.Context, ns, script string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "bash", "-c", "set -o pipefail\n"+script)
	cmd.Env = append([]string{
		"PATH=" + l.Path,
		"SSH=" + l.SSH(),
		"LC_ALL=C",
		"HOME=" + l.Dir,
		"TMPDIR=" + l.Dir,
		// Each host keeps its own state, as separate machines do.
		"BLKPIPE_STATE_DIR=" + filepath.Join(l.Dir, "client-state"),
	}, env...)
	// Own process group, so a timeout kills the whole pipeline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Result is how a command ended.
type Result struct {
	Code           int // exit status; 128+N when killed by signal N
	Stdout, Stderr string
}

// Run runs script as Bash does, waiting at most timeout, and returns its
// exit status and output. It fails the test only if the command could not
// be started or timed out.
func (l *Lab) Run(ns, script string, timeout time.Duration, env ...string) Result {
	l.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := l.Bash(ctx, ns, script, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		l.tb.Fatalf("timed out after %v: %s\nstdout: %s\nstderr: %s", timeout, script, out.String(), errb.String())
	}
	return Result{Code: ExitCode(err), Stdout: out.String(), Stderr: errb.String()}
}

// ExitCode is a shell's $? for the error exec.Cmd.Wait returned.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// SetKeyOptions rewrites the host's authorized_keys so the client's key
// carries options (e.g. `command="/path/blkwrite --allow /dev/x",restrict`);
// "" removes them. sshd reads the file at each connection.
func (h *Host) SetKeyOptions(options string) {
	h.lab.tb.Helper()
	pub, err := os.ReadFile(h.lab.Key + ".pub")
	if err != nil {
		h.lab.tb.Fatal(err)
	}
	line := string(pub)
	if options != "" {
		line = options + " " + line
	}
	h.lab.writeFile(h.AuthorizedKeys, line, 0o600)
}

// PID is the process id of the host's listening sshd.
func (h *Host) PID() int { return h.sshd.Process.Pid }

// Log returns what the host's sshd has logged so far.
func (h *Host) Log() string { return h.log.String() }

func (h *Host) start() {
	l := h.lab
	tb := l.tb
	dir := filepath.Join(l.Dir, h.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	testutil.Run(tb, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.Name, "-f", hostKey)
	h.AuthorizedKeys = filepath.Join(dir, "authorized_keys")
	h.SetKeyOptions("")
	conf := filepath.Join(dir, "sshd_config")
	l.writeFile(conf, fmt.Sprintf(`# sshd for blkpipe's ssh tests: one host of a test lab
Port %d
ListenAddress %s
HostKey %s
PidFile none
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitUserEnvironment no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 64
MaxSessions 64
LogLevel VERBOSE
SetEnv PATH=%s LC_ALL=C BLKPIPE_STATE_DIR=%s
`, h.Port, h.Addr, hostKey, h.AuthorizedKeys, l.Path, filepath.Join(dir, "state")), 0o600)
	testutil.Run(tb, SSHD, "-t", "-f", conf)

	h.log = &testutil.SyncBuffer{}
	args := []string{"netns", "exec", h.NS}
	var mounts []string
	for _, b := range l.binds {
		if b.host == h.Name {
			mounts = append(mounts, b.dir, b.path)
		}
	}
	if len(mounts) > 0 {
		// A private mount namespace holding the binds; each tool execs
		// the next, so the PID is still sshd's.
		testutil.NeedCmd(tb, "unshare")
		args = append(args, "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
			`while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@"`,
			"sh")
		args = append(append(args, mounts...), "--")
	}
	args = append(args, SSHD, "-D", "-e", "-f", conf)
	h.sshd = exec.Command("ip", args...)
	h.sshd.Stdout, h.sshd.Stderr = h.log, h.log
	if err := h.sshd.Start(); err != nil {
		tb.Fatalf("start sshd in %s: %v", h.NS, err)
	}
	h.done = make(chan struct{})
	go func() { h.sshd.Wait(); close(h.done) }()
}

// waitReady waits until the client can log in to the host and run a
// command, so tests start against a listening, working sshd.
func (h *Host) waitReady() {
	l := h.lab
	l.tb.Helper()
	var last Result
	for i := 0; i < 50; i++ {
		select {
		case <-h.done:
			l.tb.Fatalf("sshd on %s exited: %v\n%s", h.Name, h.sshd.ProcessState, h.Log())
		default:
		}
		last = l.Run(l.Client, `$SSH "$H" true`, 10*time.Second, "H="+h.Name)
		if last.Code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.tb.Fatalf("cannot ssh to %s (%s:%d): exit %d: %s\nsshd log:\n%s", h.Name, h.Addr, h.Port, last.Code, last.Stderr, h.Log())
}

func (l *Lab) teardown() {
	for _, h := range l.hosts {
		if h.sshd != nil && h.sshd.Process != nil {
			h.sshd.Process.Kill()
			select {
			case <-h.done:
			case <-time.After(5 * time.Second):
				l.tb.Errorf("sshd %d on %s did not exit", h.sshd.Process.Pid, h.Name)
			}
			if l.tb.Failed() {
				l.tb.Logf("sshd log of %s:\n%s", h.Name, h.Log())
			}
		}
	}
	nss := []string{l.Client}
	for _, h := range l.hosts {
		nss = append(nss, h.NS)
	}
	for _, ns := range nss {
		killNamespace(ns)
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "No such file") {
			l.tb.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	}
}

// killNamespace kills, by PID, every process still running in ns (remote
// sessions left behind by a killed sshd, a pipeline that timed out).
func killNamespace(ns string) {
	for try := 0; try < 20; try++ {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *Lab) mustIP(args ...string) {
	l.tb.Helper()
	testutil.Run(l.tb, "ip", args...)
}

func (l *Lab) writeFile(path, content string, mode os.FileMode) {
	l.tb.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		l.tb.Fatal(err)
	}
}
