package sshtest_test

import (
	"bytes"
	"fmt"
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

// modes are the stream kinds the failure tests run with: raw dd data, and
// the framed stream once blkcat has it.
var modes = []struct{ name, flags string }{
	{"raw", ""},
	{"frame", "--frame"},
}

// incompleteLine is blkwrite's diagnosis of a framed stream that ended
// early or was damaged after some data landed.
var incompleteLine = regexp.MustCompile(`(?m)^blkwrite: the copy is incomplete: (\d+) bytes landed on '([^']+)'; do not use the target$`)

// TestKilledMidStream kills the ssh connection while a copy is under way,
// once on each side: the client's ssh, and the sshd process serving the
// connection. The pipeline must fail, the target must not equal the
// source, and nothing may claim success; a framed stream's receiver must
// say the copy is incomplete and how many bytes landed.
func TestKilledMidStream(t *testing.T) {
	testutil.NeedRoot(t)
	dir := tools(t)
	const size = 64 << 20
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 1))
	lab := sshtest.New(t, dir, []string{"backup"})
	// 20 Mbit/s: the 64 MiB copy takes ~27 s, so it is surely under way
	// and surely not finished when the connection is killed.
	lab.Shape("backup", "20mbit")
	backup := lab.Host("backup")

	for _, m := range modes {
		for _, victim := range []string{"ssh", "sshd"} {
			t.Run(m.name+"/kill-"+victim, func(t *testing.T) {
				if m.flags != "" {
					needFrame(t)
				}
				dst, dstImage := testutil.LoopImage(t, size)
				log := filepath.Join(t.TempDir(), "remote.log")
				// The remote blkwrite's stderr goes to a file: once the
				// connection is gone, it has no other way out.
				cmd := lab.Bash(t.Context(), lab.Client,
					`blkcat $FLAGS "$SRC" | $SSH backup "blkwrite '$DST' 2>'$LOG'; echo exit \$? >>'$LOG'"`,
					"FLAGS="+m.flags, "SRC="+src, "DST="+dst, "LOG="+log)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				ssh, err := sshtest.WaitDescendant(cmd.Process.Pid, "ssh", 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				waitRemote(t, backup.PID(), "blkwrite")
				// Kill it once data has landed, with the copy well under
				// way: 2 MiB of it on the target.
				waitLanded(t, dstImage, 0)
				waitLanded(t, dstImage, 2<<20)
				switch victim {
				case "ssh":
					syscall.Kill(ssh.PID, syscall.SIGKILL)
				case "sshd":
					// The listener's child is the monitor of this
					// connection; its own children die with it.
					kids := sshtest.Descendants(backup.PID())
					for _, k := range kids {
						if k.PPID == backup.PID() && k.Comm == "sshd" {
							syscall.Kill(k.PID, syscall.SIGKILL)
						}
					}
				}
				code := sshtest.ExitCode(cmd.Wait())
				if code == 0 {
					t.Fatalf("pipeline exit 0 after its connection was killed\n%s", stderr.String())
				}
				remote := waitFile(t, log, "exit ")
				t.Logf("pipeline exit %d; client stderr:\n%s\nremote:\n%s", code, stderr.String(), remote)
				if strings.Contains(stderr.String()+remote, "verified") {
					t.Fatalf("a side claims verification after a killed connection")
				}
				if n, _ := sshtest.Diff(t, src, dst, size); n == 0 {
					t.Fatalf("target equals the source though the copy was killed")
				}
				if m.flags == "" {
					return // raw data: blkwrite sees an EOF it cannot tell from the end
				}
				if !strings.HasSuffix(remote, "exit 1\n") {
					t.Fatalf("remote blkwrite did not exit 1:\n%s", remote)
				}
				mm := incompleteLine.FindStringSubmatch(remote)
				if mm == nil || mm[2] != dst {
					t.Fatalf("remote blkwrite did not report an incomplete copy of %s:\n%s", dst, remote)
				}
				if n, _ := strconv.ParseInt(mm[1], 10, 64); n <= 0 || n >= size {
					t.Fatalf("landed %s bytes, want 0 < n < %d", mm[1], size)
				}
			})
		}
	}
}

// waitRemote waits until a process named comm runs below the host's sshd.
func waitRemote(t *testing.T, sshd int, comm string) {
	t.Helper()
	if _, err := sshtest.WaitDescendant(sshd, comm, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitLanded waits up to 30 s until the 4 KiB at off in the target's
// backing image (all zeros before the copy; random data in the source) are
// no longer all zeros.
func waitLanded(t *testing.T, image string, off int64) {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := f.ReadAt(buf, off)
		f.Close()
		if n == len(buf) && !bytes.Equal(buf, make([]byte, len(buf))) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing landed on %s at %d after 30 s", image, off)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFile waits up to 30 s for path to contain marker and returns it.
func waitFile(t *testing.T, path, marker string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(marker)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no %q after 30 s:\n%s", path, marker, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestByteFlipped flips one byte of the stream between blkcat and ssh
// (a test-only filter): a framed stream is rejected with the offset named,
// and nothing claims success; a raw stream, which has no way to know, lands
// with exactly that byte wrong, which is why framing exists.
func TestByteFlipped(t *testing.T) {
	testutil.NeedRoot(t)
	dir := tools(t)
	const size = 32 << 20
	const at = 5<<20 + 4321 // stream offset of the flipped byte
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 2))
	lab := sshtest.New(t, dir, []string{"backup"})
	// flip copies its input, inverting the byte at offset $AT; GNU head -c
	// reads no further than it writes, so the three parts stay in order.
	const flip = `flip() { head -c "$AT"; head -c 1 | tr '\000-\377' '\377\000-\376'; cat; }
`
	for _, m := range append(modes[:len(modes):len(modes)], struct{ name, flags string }{"lz4", "-z lz4"}) {
		t.Run(m.name, func(t *testing.T) {
			if m.flags != "" {
				needFrame(t)
			}
			dst, _ := testutil.LoopImage(t, size)
			r := lab.Run(lab.Client, flip+`blkcat $FLAGS "$SRC" | flip | $SSH backup blkwrite "$DST"`, 2*time.Minute,
				"FLAGS="+m.flags, "SRC="+src, "DST="+dst, "AT="+strconv.Itoa(at))
			n, first := sshtest.Diff(t, src, dst, size)
			if m.flags == "" {
				if r.Code != 0 || n != 1 || first != at {
					t.Fatalf("raw: exit %d, %d bytes differ from %d; want exit 0 and the one flipped byte at %d\n%s",
						r.Code, n, first, at, r.Stderr)
				}
				return
			}
			if r.Code == 0 {
				t.Fatalf("a damaged framed stream was accepted\n%s", r.Stderr)
			}
			if strings.Contains(r.Stderr, "verified") {
				t.Fatalf("blkwrite claims verification of a damaged stream:\n%s", r.Stderr)
			}
			// The damage is named by the stream offset of the record
			// that holds the flipped byte: at most a block before it.
			mm := regexp.MustCompile(`stream offset (\d+)`).FindStringSubmatch(r.Stderr)
			if mm == nil {
				t.Fatalf("rejection names no stream offset:\n%s", r.Stderr)
			}
			off, _ := strconv.ParseInt(mm[1], 10, 64)
			if off > at || off < at-(4<<20) {
				t.Fatalf("rejection names stream offset %d, the flipped byte is at %d:\n%s", off, at, r.Stderr)
			}
			t.Logf("exit %d:\n%s", r.Code, r.Stderr)
		})
	}
}

// TestForcedCommand runs blkwrite --allow as the ssh forced command of the
// client's key: the allowed target is written, any other target or command
// is refused with exit 3 and leaves its target untouched.
func TestForcedCommand(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "blkdiscard")
	dir := tools(t)
	const size = 16 << 20
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 3))
	allowed, _ := testutil.LoopImage(t, size)
	other, _ := testutil.LoopImage(t, size)
	lab := sshtest.New(t, dir, []string{"backup"})
	blkwrite := testutil.Tool(t, "blkwrite")
	lab.Host("backup").SetKeyOptions(fmt.Sprintf(`command="%s --allow %s",restrict`, blkwrite, allowed))
	zero := sshtest.BLAKE3(t, other)
	run := func(script string) sshtest.Result {
		return lab.Run(lab.Client, script, time.Minute, "SRC="+src, "A="+allowed, "B="+other)
	}

	// The key writes verified framed streams only (raw data needs
	// --allow-raw on the forced command).
	for _, f := range []string{"--frame", "-z lz4"} {
		testutil.Run(t, "blkdiscard", "-f", allowed)
		r := run(`blkcat ` + f + ` "$SRC" | $SSH backup blkwrite "$A"`)
		if r.Code != 0 {
			t.Fatalf("allowed target, blkcat %s: exit %d\n%s", f, r.Code, r.Stderr)
		}
		if n, first := sshtest.Diff(t, src, allowed, size); n != 0 {
			t.Fatalf("allowed target, blkcat %s: differs from the source in %d bytes from %d", f, n, first)
		}
		if !verifiedLine.MatchString(r.Stderr) {
			t.Fatalf("allowed target, blkcat %s: not verified:\n%s", f, r.Stderr)
		}
	}

	for _, tc := range []struct{ name, script, want string }{
		{"other target", `blkcat "$SRC" | $SSH backup blkwrite "$B"`,
			"blkwrite: refused: target '" + other + "' is not allowed; allowed: " + allowed + "\n"},
		{"dd operand", `blkcat "$SRC" | $SSH backup blkwrite of="$B" bs=1M`,
			"blkwrite: refused: target '" + other + "' is not allowed; allowed: " + allowed + "\n"},
		{"other command", `$SSH backup cat /etc/hostname`,
			`blkwrite: refused: this key may only run blkwrite, not "cat /etc/hostname"` + "\n"},
		{"shell syntax", `blkcat "$SRC" | $SSH backup "blkwrite $A; touch $B"`,
			"blkwrite: refused: shell syntax ';' in the client's command\n"},
		{"if=", `$SSH backup blkwrite if="$B" of="$A"`,
			"blkwrite: refused: the client may not read a local file (if=)\n"},
		{"raw data", `blkcat "$SRC" | $SSH backup blkwrite "$A"`,
			"blkwrite: refused: 'standard input' is not a framed stream: this key writes only verified framed streams (blkcat --frame); raw data needs --allow-raw on the forced command; nothing was written\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.script)
			if r.Code != 3 || r.Stderr != tc.want {
				t.Fatalf("exit %d, stderr %q; want exit 3, %q", r.Code, r.Stderr, tc.want)
			}
			if got := sshtest.BLAKE3(t, other); got != zero {
				t.Fatalf("refused target %s was written", other)
			}
		})
	}
}

// TestFanOut sends one stream to two backup hosts with tee and process
// substitution, as users write it, and gets two identical copies.
func TestFanOut(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "blkdiscard")
	dir := tools(t)
	const size = 64 << 20
	img := sshtest.Ext4Image(t, size, sshtest.MixedTree(t, 32<<20))
	src := testutil.LoopDevice(t, img)
	lab := sshtest.New(t, dir, []string{"hostb", "hostc"})
	flags := "" // raw until blkcat has -z
	if hasFrame(t) {
		flags = "-z lz4"
	} else {
		testutil.Missing(t, "frame", "blkcat has no --frame: only raw copies checked")
	}
	dstB, _ := testutil.LoopImage(t, size)
	dstC, _ := testutil.LoopImage(t, size)
	tmp := t.TempDir()
	rcB := filepath.Join(tmp, "rc-b")
	// bash does not wait for a process substitution, so its exit status
	// is written to a file the test waits for. The substitution's stdout
	// must not be tee's stdout: ssh sets O_NONBLOCK on its stdout, which
	// would then be the pipe tee writes to hostc through, and tee fails
	// with "Resource temporarily unavailable" (seen in this test).
	// tee -p: see "hostb fails" below.
	const fanout = `blkcat $FLAGS "$SRC" | tee -p >($SSH hostb "$CMDB" >/dev/null 2>"$ERRB"; echo $? >"$RCB") | $SSH hostc blkwrite "$DC"`
	r := lab.Run(lab.Client, fanout, 2*time.Minute, "FLAGS="+flags, "SRC="+src, "CMDB=blkwrite "+dstB, "DC="+dstC,
		"RCB="+rcB, "ERRB="+filepath.Join(tmp, "err-b"))
	if r.Code != 0 {
		t.Fatalf("pipeline to hostc: exit %d\n%s", r.Code, r.Stderr)
	}
	if rc := waitFile(t, rcB, "\n"); rc != "0\n" {
		b, _ := os.ReadFile(filepath.Join(tmp, "err-b"))
		t.Fatalf("hostb: exit %s%s", rc, b)
	}
	want := sshtest.BLAKE3(t, img)
	for _, dst := range []string{dstB, dstC} {
		if got := sshtest.BLAKE3(t, dst); got != want {
			t.Fatalf("%s: sha256 %s, source %s", dst, got, want)
		}
	}
	if flags != "" {
		b, _ := os.ReadFile(filepath.Join(tmp, "err-b"))
		for _, s := range []string{r.Stderr, string(b)} {
			if m := verifiedLine.FindStringSubmatch(s); m == nil || m[1] != want {
				t.Fatalf("no verified digest %s in:\n%s", want, s)
			}
		}
	}

	// hostb's receiver goes away after 1 MiB (its connection dropped):
	// hostc's copy must go on. Plain tee died of SIGPIPE then and cut
	// hostc's copy short; tee -p (--output-error=warn-nopipe) drops the
	// dead output and keeps writing the other.
	t.Run("hostb fails", func(t *testing.T) {
		testutil.Run(t, "blkdiscard", "-f", dstC)
		rcB := filepath.Join(t.TempDir(), "rc-b")
		r := lab.Run(lab.Client, fanout, 2*time.Minute, "FLAGS="+flags, "SRC="+src, "CMDB=head -c 1M >/dev/null; exit 1", "DC="+dstC,
			"RCB="+rcB, "ERRB=/dev/null")
		if r.Code != 0 {
			t.Fatalf("pipeline to hostc: exit %d after hostb failed\n%s", r.Code, r.Stderr)
		}
		if rc := waitFile(t, rcB, "\n"); rc != "1\n" {
			t.Fatalf("hostb: exit %s, want 1", rc)
		}
		if got := sshtest.BLAKE3(t, dstC); got != want {
			t.Fatalf("%s: sha256 %s, source %s", dstC, got, want)
		}
	})
}
