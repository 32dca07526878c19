// Package qemutest boots a throw-away Linux guest under QEMU (TCG, no KVM)
// to run tests that must not touch the host: LVM and device-mapper.
//
// The guest runs Debian's stock kernel, fetched with `apt-get download`
// and unpacked with dpkg -x (never installed), booted directly from the
// uncompressed vmlinux (PVH entry) when it can be extracted. Its initramfs
// holds busybox-static, the host's lvm, dmsetup and thin-provisioning tools
// with their shared libraries, an lvm.conf with udev and monitoring off,
// and the kernel modules for virtio disks, device-mapper snapshots and
// thin pools and ext4, loaded with insmod in dependency order. Disks are raw image
// files on virtio-blk, so the host can check what the guest wrote after it
// has exited.
//
// The kernel and the base initramfs are cached in
// $BLKPIPE_QEMU_CACHE, else /var/cache/blkpipe-qemu when root, else
// $XDG_CACHE_HOME/blkpipe-qemu, keyed by the package versions and the
// modules chosen.
//
// A test usually runs its own test binary in the guest:
//
//	func TestLVM(t *testing.T) {
//		if qemutest.InGuest() {
//			... // the real test, as root in the guest
//			return
//		}
//		qemutest.RunTest(t, qemutest.Config{Disks: disks})
//	}
package qemutest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// GuestEnv is set to 1 in the environment of everything run in the guest.
const GuestEnv = "BLKPIPE_QEMU_GUEST"

// marker is the line the guest's init prints with the script's status.
const marker = "QEMUTEST-EXIT="

// InGuest reports whether the code runs inside a qemutest guest.
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

// Config describes one boot.
type Config struct {
	// Disks are raw image files, attached in order as /dev/vda, /dev/vdb…
	Disks []string
	// Files maps a path in the guest to a host file copied there;
	// dynamically linked executables get their shared libraries too.
	Files map[string]string
	// Script is run by /bin/sh as root in the guest, with PATH set and
	// GuestEnv=1; its exit status is the result.
	Script string
	// MemoryMiB is the guest's memory; default 512.
	MemoryMiB int
	// Timeout bounds the whole boot; default 8 minutes.
	Timeout time.Duration
	// Log, if set, receives the serial console as it comes.
	Log io.Writer
}

// Result is what a boot produced.
type Result struct {
	// Console is everything the guest printed on its serial console.
	Console string
	// Status is the script's exit status.
	Status int
}

// NeedQEMU skips the test (fails it in CI) unless the host can boot guests:
// root (for the apt cache), qemu-system-x86_64, apt-get and dpkg.
func NeedQEMU(tb testing.TB) {
	tb.Helper()
	testutil.NeedRoot(tb)
	testutil.NeedCmd(tb, "qemu-system-x86_64", "apt-get", "apt-cache", "dpkg", "lvm", "busybox")
}

// RunTest boots a guest that runs the calling test (tb.Name(), as a
// -test.run pattern) from the current test binary with -test.v, and fails
// tb if the guest's run failed, ran no test, or qemu ended without
// reporting. A skip in the guest is a skip on the host (a failure in CI):
// the test itself skips with the guest's reason, or, for a skipped subtest,
// a host subtest of the same name does. extra flags are added to the test
// binary's command line.
func RunTest(tb testing.TB, cfg Config, extra ...string) Result {
	tb.Helper()
	NeedQEMU(tb)
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.Files == nil {
		cfg.Files = map[string]string{}
	}
	cfg.Files["/test/test.bin"] = self
	parts := strings.Split(tb.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	env := ""
	if testutil.InCI() {
		// In CI a missing prerequisite fails, in the guest too.
		env = "export CI=true; "
	}
	cfg.Script = fmt.Sprintf("cd /test && %sexec ./test.bin -test.v -test.count=1 -test.timeout=%s -test.run '%s' %s", env,
		timeoutOr(cfg.Timeout).String(), strings.Join(parts, "/"), strings.Join(extra, " "))
	res := Boot(tb, cfg)
	if res.Status != 0 {
		tb.Fatalf("test in the guest failed (status %d); console:\n%s", res.Status, res.Console)
	}
	tb.Logf("guest console:\n%s", res.Console)
	if strings.Contains(res.Console, "testing: warning: no tests to run") {
		tb.Fatalf("the guest ran no test matching %q", tb.Name())
	}
	for _, s := range guestSkips(res.Console) {
		switch {
		case s.name == tb.Name():
			testutil.Skip(tb, "in the guest: "+s.reason)
		case strings.HasPrefix(s.name, tb.Name()+"/"):
			sub := strings.TrimPrefix(s.name, tb.Name()+"/")
			if t, ok := tb.(*testing.T); ok {
				t.Run(sub, func(t *testing.T) { testutil.Skip(t, "in the guest: "+s.reason) })
			} else {
				testutil.Skip(tb, "in the guest, "+sub+": "+s.reason)
			}
		}
	}
	return res
}

// skip is a test the guest skipped and the reason it logged.
type skip struct{ name, reason string }

var (
	// testStart is go test -v's line when a test starts or resumes output.
	testStart = regexp.MustCompile(`^=== (?:RUN|CONT|NAME|PAUSE)\s+(\S+)`)
	// skipLine is go test -v's "--- SKIP: TestX/sub (0.00s)", indented
	// for subtests.
	skipLine = regexp.MustCompile(`^\s*--- SKIP: (\S+) \(`)
	// logLine is a t.Log line: "    file_test.go:12: message".
	logLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)
)

// guestSkips returns the tests that go test -v output (the guest's
// console) reports skipped, with the log lines each printed as its reason.
func guestSkips(console string) []skip {
	var skips []skip
	logs := map[string][]string{}
	current := ""
	for _, l := range strings.Split(console, "\n") {
		l = strings.TrimRight(l, "\r")
		if m := testStart.FindStringSubmatch(l); m != nil {
			current = m[1]
			continue
		}
		if m := skipLine.FindStringSubmatch(l); m != nil {
			reason := strings.Join(logs[m[1]], " ")
			if reason == "" {
				reason = "(no reason given)"
			}
			skips = append(skips, skip{m[1], reason})
			continue
		}
		if m := logLine.FindStringSubmatch(l); m != nil && current != "" {
			logs[current] = append(logs[current], m[1])
		}
	}
	return skips
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return 8 * time.Minute
	}
	return d
}

// Boot starts the guest, waits for it and returns its result. It fails tb
// if qemu cannot start, times out, or exits without the status marker
// (a kernel panic, a crash of init).
func Boot(tb testing.TB, cfg Config) Result {
	tb.Helper()
	NeedQEMU(tb)
	a, err := assets()
	if err != nil {
		tb.Fatalf("prepare the guest kernel and initramfs: %v", err)
	}
	dir := tb.TempDir()
	initrd := filepath.Join(dir, "initrd")
	if err := writeInitrd(initrd, a.initramfs, cfg); err != nil {
		tb.Fatalf("build initramfs: %v", err)
	}
	mem := cfg.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	args := []string{
		"-accel", "tcg,thread=multi", "-M", "pc", "-cpu", "max", "-smp", "2", "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", a.kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init mitigations=off nokaslr tsc=reliable",
	}
	for _, d := range cfg.Disks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio,cache=unsafe")
	}
	limit := timeoutOr(cfg.Timeout) + time.Minute
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		// Fail with the console before go test's own timeout panics.
		if d, ok := t.Deadline(); ok && time.Until(d)-10*time.Second < limit {
			limit = time.Until(d) - 10*time.Second
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	// qemu must not outlive the test binary (a panic, go test's timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var console bytes.Buffer
	var out io.Writer = &console
	if cfg.Log != nil {
		out = io.MultiWriter(&console, cfg.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	text := strings.ReplaceAll(console.String(), "\r\n", "\n")
	if ctx.Err() != nil {
		tb.Fatalf("guest timed out after %v (limit %v, from the test's deadline or Config.Timeout); console:\n%s", time.Since(start).Round(time.Second), limit.Round(time.Second), text)
	}
	if err != nil {
		tb.Fatalf("qemu-system-x86_64: %v; console:\n%s", err, text)
	}
	i := strings.LastIndex(text, marker)
	if i < 0 {
		tb.Fatalf("guest ended without %s (panic or crash); console:\n%s", marker, text)
	}
	line := text[i+len(marker):]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	status, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		tb.Fatalf("bad status line %q; console:\n%s", line, text)
	}
	tb.Logf("guest ran %v, status %d", time.Since(start).Round(100*time.Millisecond), status)
	return Result{Console: text[:i], Status: status}
}

// writeInitrd concatenates the cached base initramfs and a cpio with the
// boot's files and script: the kernel unpacks both.
func writeInitrd(dst, base string, cfg Config) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := os.Open(base)
	if err != nil {
		return err
	}
	defer b.Close()
	if _, err := io.Copy(f, b); err != nil {
		return err
	}
	c := newCpio(f)
	libs := map[string]bool{}
	for _, guest := range sortedKeys(cfg.Files) {
		host := cfg.Files[guest]
		if err := c.hostFile(guest, host); err != nil {
			return err
		}
		if err := addSharedLibs(c, host, libs); err != nil {
			return err
		}
	}
	var s strings.Builder
	// Wait for the last disk: virtio probing may finish after insmod.
	if n := len(cfg.Disks); n > 0 {
		fmt.Fprintf(&s, "i=0; while [ ! -b /dev/vd%c ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n", 'a'+n-1)
	}
	s.WriteString(cfg.Script + "\n")
	c.file("/guest.sh", 0o755, []byte(s.String()))
	if err := c.close(); err != nil {
		return err
	}
	return f.Close()
}

// addSharedLibs adds to c, at their host paths, the shared libraries the
// host executable path needs (sharedLibs) that are not in have yet, and
// notes them in have.
func addSharedLibs(c *cpioWriter, path string, have map[string]bool) error {
	deps, err := sharedLibs(path)
	if err != nil {
		return err
	}
	for _, l := range deps {
		if !have[l] {
			have[l] = true
			if err := c.hostFile(l, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// sharedLibs lists the shared libraries (and loader) an ELF executable
// needs, by ldd; none for static binaries and non-ELF files.
func sharedLibs(path string) ([]string, error) {
	ef, err := elf.Open(path)
	if err != nil {
		return nil, nil // a script or data
	}
	defer ef.Close()
	dynamic := false
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	if !dynamic {
		return nil, nil
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		switch {
		case len(fs) >= 3 && fs[1] == "=>" && strings.HasPrefix(fs[2], "/"):
			libs = append(libs, fs[2])
		case len(fs) >= 1 && strings.HasPrefix(fs[0], "/"):
			libs = append(libs, fs[0])
		}
	}
	return libs, nil
}

type assetPaths struct {
	kernel    string // vmlinux, or vmlinuz when it could not be extracted
	initramfs string // base cpio: busybox, lvm, modules, init
}

var (
	assetsOnce sync.Mutex
	assetsDone *assetPaths
)

// cacheRoot picks the cache directory; see the package documentation.
func cacheRoot() string {
	if d := os.Getenv("BLKPIPE_QEMU_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/blkpipe-qemu"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "blkpipe-qemu")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "blkpipe-qemu")
}

// assets returns the cached kernel and base initramfs, making them first
// if needed. Test binaries of several packages may do so at once: an
// exclusive flock on the cache serialises them.
func assets() (*assetPaths, error) {
	assetsOnce.Lock()
	defer assetsOnce.Unlock()
	if assetsDone != nil {
		return assetsDone, nil
	}
	root := cacheRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", root, err)
	}
	// Leftovers of a run that was killed while fetching.
	if old, _ := filepath.Glob(filepath.Join(root, "fetch-*")); len(old) > 0 {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	pkg, version, err := kernelPackage()
	if err != nil {
		return nil, err
	}
	kdir := filepath.Join(root, pkg+"_"+version+"_"+modulesKey())
	if _, err := os.Stat(filepath.Join(kdir, "done")); err != nil {
		if err := fetchKernel(root, kdir, pkg); err != nil {
			return nil, err
		}
	}
	kernel := filepath.Join(kdir, "vmlinux")
	if _, err := os.Stat(kernel); err != nil {
		kernel = filepath.Join(kdir, "vmlinuz")
	}
	key, err := initramfsKey(kdir)
	if err != nil {
		return nil, err
	}
	initramfs := filepath.Join(root, "initramfs-"+key+".cpio")
	if _, err := os.Stat(initramfs); err != nil {
		if err := buildInitramfs(initramfs, kdir); err != nil {
			return nil, err
		}
	}
	assetsDone = &assetPaths{kernel: kernel, initramfs: initramfs}
	return assetsDone, nil
}

// kernelPackage resolves linux-image-amd64 to the versioned package it
// depends on, and that package's candidate version.
func kernelPackage() (pkg, version string, err error) {
	if p := os.Getenv("BLKPIPE_QEMU_KERNEL_PKG"); p != "" {
		pkg = p
	} else {
		out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
		if err == nil {
			if m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)\b`).FindSubmatch(out); m != nil {
				pkg = string(m[1])
			}
		}
		if pkg == "" {
			// The package lists may be missing on a fresh machine.
			if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
				return "", "", fmt.Errorf("apt-get update: %v: %s", err, out)
			}
			out, err = exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
			if err != nil {
				return "", "", fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
			}
			m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)\b`).FindSubmatch(out)
			if m == nil {
				return "", "", fmt.Errorf("apt-cache depends linux-image-amd64 names no kernel: %s", out)
			}
			pkg = string(m[1])
		}
	}
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %w", pkg, err)
	}
	m := regexp.MustCompile(`(?m)^Version: (\S+)`).FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("apt-cache show %s: no version", pkg)
	}
	return pkg, string(m[1]), nil
}

// guestModules are loaded in the guest, with their dependencies before
// them. crc32c_generic comes first: libcrc32c asks the crypto API for
// crc32c, and the optimised crc32c-intel fails under TCG.
// ext4 is for tests that mount a filesystem on a logical volume.
var guestModules = []string{"crc32c_generic", "virtio_pci", "virtio_blk", "dm_mod", "dm_snapshot", "dm_thin_pool", "ext4"}

// modulesKey tells kernel directories unpacked for other guestModules apart.
func modulesKey() string {
	h := sha256.Sum256([]byte(strings.Join(guestModules, " ")))
	return hex.EncodeToString(h[:4])
}

// fetchKernel downloads and unpacks the kernel package into kdir: the
// kernel image (vmlinux if it can be extracted) and the guest's modules
// with a load order.
func fetchKernel(root, kdir, pkg string) error {
	tmp, err := os.MkdirTemp(root, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %v: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	x := filepath.Join(tmp, "x")
	if out, err := exec.Command("dpkg", "-x", debs[0], x).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -x %s: %v: %s", debs[0], err, out)
	}
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(filepath.Join(out, "modules"), 0o755); err != nil {
		return err
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(x, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return fmt.Errorf("%s holds %d vmlinuz files", pkg, len(vmlinuz))
	}
	if err := copyFile(filepath.Join(out, "vmlinuz"), vmlinuz[0]); err != nil {
		return err
	}
	// The uncompressed ELF boots through PVH, skipping the decompressor
	// (seconds under TCG). Without xz, or if it fails, boot the bzImage.
	if err := extractVmlinux(vmlinuz[0], filepath.Join(out, "vmlinux")); err != nil {
		os.Remove(filepath.Join(out, "vmlinux"))
	}
	order, err := moduleOrder(x, guestModules)
	if err != nil {
		return err
	}
	var names []string
	for _, p := range order {
		if err := copyFile(filepath.Join(out, "modules", filepath.Base(p)), p); err != nil {
			return err
		}
		names = append(names, filepath.Base(p))
	}
	if err := os.WriteFile(filepath.Join(out, "modules.order"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "done"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(kdir)
	return os.Rename(out, kdir)
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// extractVmlinux finds the xz stream in a bzImage and decompresses it
// with xz, keeping the result only if it is an ELF file.
func extractVmlinux(vmlinuz, dst string) error {
	b, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte("\xfd7zXZ\x00"))
	if i < 0 {
		return errors.New("no xz stream in the kernel image")
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	xz := exec.Command("xz", "-dc", "--single-stream")
	xz.Stdin = bytes.NewReader(b[i:])
	xz.Stdout = f
	if err := xz.Run(); err != nil {
		return fmt.Errorf("xz: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	ef, err := elf.Open(dst)
	if err != nil {
		return err
	}
	return ef.Close()
}

// moduleOrder returns the .ko files for want and everything they depend
// on (the "depends=" of their .modinfo), dependencies first.
func moduleOrder(root string, want []string) ([]string, error) {
	byName := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			byName[modName(filepath.Base(p))] = p
		}
		return nil
	})
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = modName(name)
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := byName[name]
		if !ok {
			return nil // built into the kernel
		}
		deps, err := modDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, w := range want {
		if err := visit(w); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".ko"), "-", "_")
}

// modDepends reads depends= from a module's .modinfo section.
func modDepends(path string) ([]string, error) {
	ef, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	s := ef.Section(".modinfo")
	if s == nil {
		return nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// hostTools go into the guest, with their shared libraries.
var hostTools = []string{"/usr/sbin/lvm", "/usr/sbin/dmsetup", "/usr/sbin/pdata_tools"}

var lvmCommands = []string{"lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvextend", "lvchange", "lvconvert", "lvrename",
	"vgcreate", "vgremove", "vgchange", "pvcreate", "pvremove", "lvdisplay", "vgdisplay"}

var thinTools = []string{"thin_check", "thin_dump", "thin_repair", "thin_restore", "thin_delta"}

const lvmConf = `# qemutest: no udev in the guest
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	use_lvmpolld = 0
}
backup {
	backup = 0
	archive = 0
}
`

const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run/lock/lvm /run/lvm /mnt /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
while read m; do
	insmod /lib/modules/guest/$m || echo "qemutest: insmod $m failed"
done < /lib/modules/guest/modules.order
export ` + GuestEnv + `=1 HOME=/tmp LVM_SUPPRESS_FD_WARNINGS=1
sh /guest.sh
echo "` + marker + `$?"
sync
poweroff -f
`

// initramfsKey hashes what goes into the base initramfs, so a new kernel,
// lvm or busybox, or a change here, builds a new one.
func initramfsKey(kdir string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, kdir, initScript, lvmConf, guestModules, lvmCommands, thinTools)
	for _, p := range append([]string{"/bin/busybox"}, hostTools...) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, p, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func buildInitramfs(dst, kdir string) error {
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriter(f)
	c := newCpio(w)
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc/lvm", "/proc", "/sys", "/dev", "/tmp", "/run", "/lib64"} {
		c.mkdirAll(d)
	}
	c.file("/init", 0o755, []byte(initScript))
	c.file("/etc/lvm/lvm.conf", 0o644, []byte(lvmConf))
	if err := c.hostFile("/bin/busybox", "/bin/busybox"); err != nil {
		return err
	}
	c.symlink("/bin/sh", "busybox")
	libs := map[string]bool{}
	for _, t := range hostTools {
		if err := c.hostFile(t, t); err != nil {
			return fmt.Errorf("%s (install lvm2, dmsetup, thin-provisioning-tools): %w", t, err)
		}
		if err := addSharedLibs(c, t, libs); err != nil {
			return err
		}
	}
	for _, n := range lvmCommands {
		c.symlink("/usr/sbin/"+n, "lvm")
	}
	for _, n := range thinTools {
		c.symlink("/usr/sbin/"+n, "pdata_tools")
	}
	order, err := os.ReadFile(filepath.Join(kdir, "modules.order"))
	if err != nil {
		return err
	}
	c.file("/lib/modules/guest/modules.order", 0o644, order)
	for _, m := range strings.Fields(string(order)) {
		if err := c.hostFile("/lib/modules/guest/"+m, filepath.Join(kdir, "modules", m)); err != nil {
			return err
		}
	}
	if err := c.close(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
