package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// habitCase is a shell script run once with $P the real dd and once with
// $P each tool; TXT is a text file, BIN random bytes, DIR a scratch
// directory, DEV a loop device holding BIN's first 64 KiB (root only).
type habitCase struct {
	name   string
	script string
	tools  []string // default blkcat and blkwrite
	retry  bool     // timing-dependent: up to 3 attempts
}

var habitCases = []habitCase{
	// Text conversions, record by record as dd applies them.
	{name: "ucase", script: `$P if=TXT conv=ucase`},
	{name: "lcase-stdin", script: `$P conv=lcase <TXT`},
	{name: "swab-odd-records", script: `$P if=TXT conv=swab bs=3`},
	{name: "swab-ibs-obs", script: `$P if=BIN conv=swab ibs=333 obs=1000`},
	{name: "swab-count", script: `$P if=TXT conv=swab bs=7 count=3`},
	{name: "ascii", script: `$P if=BIN conv=ascii`},
	{name: "ebcdic", script: `$P if=BIN conv=ebcdic`},
	{name: "ibm-ucase", script: `$P if=BIN conv=ibm,ucase bs=4096`},
	{name: "ascii-lcase-unblock", script: `$P if=BIN conv=ascii,lcase cbs=80`},
	{name: "ebcdic-block", script: `$P if=TXT conv=ebcdic cbs=16`},
	{name: "block-truncates", script: `$P if=TXT conv=block cbs=8`},
	{name: "block-bin", script: `$P if=BIN conv=block cbs=100 obs=999`},
	{name: "unblock", script: `$P if=TXT conv=unblock cbs=10`},
	{name: "block-sync-pads-spaces", script: `$P if=TXT conv=block,sync cbs=5 ibs=13`},
	{name: "unblock-sync", script: `$P if=TXT conv=unblock,sync cbs=6 bs=17`},
	{name: "ucase-sync", script: `$P if=TXT conv=ucase,sync bs=50`},
	{name: "ucase-skip-count-bytes", script: `$P if=TXT conv=ucase skip=3 bs=5 iflag=count_bytes count=23`},
	{name: "ucase-of-seek", script: `$P if=TXT of=DIR/out conv=ucase seek=2 bs=10 && od -c DIR/out`},
	{name: "sparse-lcase", script: `$P if=/dev/zero of=DIR/out count=3 conv=sparse,lcase bs=4096 && stat -c %s DIR/out`},
	{name: "swab-pipe-reads", script: `{ printf abc; sleep 0.2; printf defg; sleep 0.2; printf h; } | $P conv=swab bs=16`, retry: true},
	{name: "block-pipe-reads", script: `{ printf 'ab\ncd'; sleep 0.2; printf 'efghij\n'; } | $P conv=block cbs=4`, retry: true},
	{name: "cbs-alone", script: `$P if=TXT cbs=5`},
	{name: "iflag-direct-ucase", script: `$P if=BIN iflag=direct bs=4096 conv=ucase`},
	{name: "device-swab", script: `$P if=DEV conv=swab bs=1000`, tools: []string{"blkcat"}},
	{name: "lcase-ucase", script: `$P conv=lcase,ucase </dev/null`},
	{name: "block-unblock", script: `$P conv=block,unblock cbs=3 </dev/null`},
	{name: "ascii-ibm", script: `$P conv=ascii,ibm </dev/null`},
	// iflag=nocache with count=0 needs the input's offset, which a pipe
	// has not; direct with nocache is refused with exit status 1.
	{name: "nocache-pipe-count0", script: `: | $P iflag=nocache count=0`},
	{name: "nocache-out-pipe-count0", script: `$P oflag=nocache count=0 </dev/null | cat`},
	{name: "nocache-file-count0", script: `$P iflag=nocache count=0 if=TXT`},
	{name: "nocache-pipe-data", script: `$P iflag=nocache <TXT | cat`},
	{name: "nocache-direct", script: `$P iflag=nocache,direct if=/dev/null`},
	// Statistics that cannot be written are a failure.
	{name: "stats-to-full", script: `: | $P 2>/dev/full; echo "exit $?"`},
	{name: "quiet-to-full", script: `: | $P status=none 2>/dev/full; echo "exit $?"`},
	// dd prints status=progress after the first read that follows 1 s.
	{name: "progress-after-first-read", script: `{ sleep 1.3; echo 1; } | $P bs=1 status=progress of=/dev/null`, retry: true},
}

// maskHabit is mask with the program's name as the link or path the
// script ran it by.
func maskHabit(stderr, prog string) string {
	return mask(stderr, prog)
}

func habitFiles(t *testing.T) (dir, txt, bin string) {
	t.Helper()
	dir = t.TempDir()
	var b strings.Builder
	for i := 0; i < 200; i++ {
		b.WriteString(strings.Repeat("Word ", i%7))
		b.WriteString(strings.Repeat(" ", i%3))
		b.WriteString("The Quick Brown fox JUMPS")
		b.WriteString(strings.Repeat("x", i%23))
		b.WriteString("\n")
		if i%17 == 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString("no newline at the end")
	txt = filepath.Join(dir, "text")
	if err := os.WriteFile(txt, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(20, 9))
	data := make([]byte, 200001)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	bin = filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, txt, bin
}

// runHabit runs script with $P set to bin, in the C locale.
func runHabit(t *testing.T, script, bin string) result {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "P="+bin, "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{out: stdout.Bytes(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestDifferentialDDHabits holds the tools to dd 9.1 on the habits of
// issue #20: text conversions, nocache on a pipe, a failed statistics
// write, and when the first status=progress line appears.
func TestDifferentialDDHabits(t *testing.T) {
	testutil.NeedCmd(t, "dd", "bash", "od", "stat")
	tools := map[string]string{"blkcat": testutil.Tool(t, "blkcat"), "blkwrite": testutil.Tool(t, "blkwrite")}
	dir, txt, bin := habitFiles(t)
	dev := ""
	for _, tc := range habitCases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.script, "DEV") && dev == "" {
				testutil.NeedRoot(t)
				img := filepath.Join(dir, "dev.img")
				data, err := os.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(img, data[:64<<10], 0o644); err != nil {
					t.Fatal(err)
				}
				dev = testutil.LoopDevice(t, img)
			}
			work := t.TempDir()
			script := strings.NewReplacer("TXT", txt, "BIN", bin, "DIR", work, "DEV", dev).Replace(tc.script)
			progs := tc.tools
			if progs == nil {
				progs = []string{"blkcat", "blkwrite"}
			}
			for _, prog := range progs {
				attempts := 1
				if tc.retry {
					attempts = 3 // pipe timing on a loaded machine
				}
				var want, got result
				for a := 0; a < attempts; a++ {
					want = runHabit(t, script, "dd")
					got = runHabit(t, script, tools[prog])
					if maskHabit(want.stderr, "dd") == maskHabit(got.stderr, prog) && bytes.Equal(want.out, got.out) {
						break
					}
				}
				compareToDD(t, prog, got, want, maskHabit)
			}
		})
	}
}

// TestDDNameThroughLink: run through a link named dd, the tools' messages
// say "dd:" as dd's do.
func TestDDNameThroughLink(t *testing.T) {
	testutil.NeedCmd(t, "dd", "bash")
	for _, tool := range []string{"blkcat", "blkwrite"} {
		t.Run(tool, func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "dd")
			if err := os.Symlink(testutil.Tool(t, tool), link); err != nil {
				t.Fatal(err)
			}
			for _, script := range []string{
				`$P if=/nonexistent/file`,
				`$P conv=excl,nocreat`,
				`$P iflag=nocache,direct if=/dev/null`,
				`printf abc | $P conv=ucase`,
			} {
				want := runHabit(t, script, "dd")
				got := runHabit(t, script, link)
				// Both say "dd:"; only the times may differ.
				compareToDD(t, "dd", got, want, func(s, _ string) string { return timeRE.ReplaceAllString(s, "copied, T s, R") })
			}
		})
	}
}

// TestTextConversionFramed: a text conversion is applied on blkcat's
// framed path too, so what blkwrite writes is dd's output.
func TestTextConversionFramed(t *testing.T) {
	testutil.NeedCmd(t, "dd", "bash")
	_, txt, bin := habitFiles(t)
	for _, ops := range []string{"if=" + txt + " conv=ucase,swab", "if=" + bin + " conv=ebcdic cbs=77 bs=64K"} {
		want := runHabit(t, `$P `+ops+` status=none`, "dd")
		got, stderr, code := sh(t, nil, `$BC --frame `+ops+` status=none | $BW status=none`)
		if code != 0 || got != string(want.out) {
			t.Errorf("%s: blkcat --frame | blkwrite exit %d, %d bytes (stderr %q); dd gives %d bytes",
				ops, code, len(got), stderr, len(want.out))
		}
	}
}

// TestTextConversionRefused: where a text conversion cannot be applied as
// dd would (a framed stream blkwrite decodes, the delta modes that read
// all of SRC), the tools refuse it before writing anything.
func TestTextConversionRefused(t *testing.T) {
	_, txt, _ := habitFiles(t)
	for _, tc := range []struct{ script, want string }{
		{`$BC --frame if=` + txt + ` status=none | $BW conv=ucase status=none`, "blkwrite: 'standard input' is a framed stream: the text conversions"},
		{`$BC --sums if=` + txt + ` conv=swab`, "blkcat: --sums, --against and --resume read all of SRC as it is: the text conversions"},
	} {
		out, stderr, code := sh(t, nil, tc.script)
		if code != 2 || out != "" || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2, nothing written, %q...", tc.script, code, out, stderr, tc.want)
		}
	}
}
