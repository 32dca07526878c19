package sshtest_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestSSHBench is scripts/bench-ssh.sh: one run of each way to copy the
// mixed ext4 image through ssh, with the veth shaped to 1 Gbit/s (tbf) and
// unshaped, printing the source data rate of each and its ratio to the
// limit: the link, or the ssh ceiling (zeros from /dev/zero through ssh to
// /dev/null, with blkcat's and blkwrite's 1 MiB pipes) when that is lower. Speed is never asserted; only the copies
// are checked. Runs only with BLKPIPE_SSH_BENCH=1.
func TestSSHBench(t *testing.T) {
	if os.Getenv("BLKPIPE_SSH_BENCH") != "1" {
		t.Skip("a benchmark: run scripts/bench-ssh.sh (BLKPIPE_SSH_BENCH=1)")
	}
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mkfs.ext4", "dd", "tc", "blkdiscard")
	mib, _ := strconv.Atoi(os.Getenv("BLKPIPE_SSH_BENCH_MIB"))
	if mib <= 0 {
		mib = 1024
	}
	size := int64(mib) << 20
	dir := tools(t)
	img := sshtest.Ext4Image(t, size, sshtest.MixedTree(t, size*6/10))
	want := sshtest.BLAKE3(t, img)
	src := testutil.LoopDevice(t, img)
	dst, _ := testutil.LoopImage(t, size)
	lab := sshtest.New(t, dir, []string{"backup"})

	type method struct{ name, script string }
	methods := []method{
		{"dd bs=512 | ssh dd bs=512 (recipe)", `dd if="$SRC" bs=512 2>/dev/null | $SSH backup "dd of=$DST bs=512 2>/dev/null"`},
		{"dd bs=1M | ssh dd bs=1M", `dd if="$SRC" bs=1M 2>/dev/null | $SSH backup "dd of=$DST bs=1M 2>/dev/null"`},
		{"blkcat | ssh blkwrite (raw)", `blkcat -q "$SRC" | $SSH backup blkwrite -q "$DST"`},
	}
	if hasFrame(t) {
		methods = append(methods,
			method{"blkcat --frame | ssh blkwrite", `blkcat -q --frame "$SRC" | $SSH backup blkwrite -q "$DST"`},
			method{"blkcat -z lz4 | ssh blkwrite", `blkcat -q -z lz4 "$SRC" | $SSH backup blkwrite -q "$DST"`})
	} else {
		testutil.Missing(t, "frame", "blkcat has no --frame: no framed or -z lz4 rows")
	}
	env := []string{"SRC=" + src, "DST=" + dst, "N=" + strconv.FormatInt(size, 10)}
	timed := func(script string) float64 {
		t.Helper()
		start := time.Now()
		r := lab.Run(lab.Client, script, 30*time.Minute, env...)
		secs := time.Since(start).Seconds()
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", script, r.Code, r.Stderr)
		}
		return secs
	}
	// Each copy pays one ssh login, which is not copying: the fastest of
	// three logins is taken off every time.
	login := timed(`$SSH backup true`)
	for range 2 {
		login = min(login, timed(`$SSH backup true`))
	}
	rate := func(script string) float64 {
		t.Helper()
		return float64(size) / max(timed(script)-login, 1e-3) / 1e6
	}
	var report strings.Builder
	fmt.Fprintf(&report, "ssh login: %.2f s, taken off each copy's time\n", login)
	for _, shaped := range []bool{false, true} {
		link := 0.0
		label := "unshaped veth"
		if shaped {
			lab.Shape("backup", "1gbit")
			link = 125 // MB/s: 1 Gbit/s, before TCP/IP and ssh overhead
			label = "veth with tbf rate 1gbit (125 MB/s)"
		}
		// The ssh ceiling is measured before and after the methods and
		// the higher kept: on a shared machine one run can be unlucky.
		zeros := `blkcat -q --length "$N" /dev/zero | $SSH backup "blkwrite -q /dev/null"`
		before := rate(zeros)
		rates := make([]float64, len(methods))
		for i, m := range methods {
			rates[i] = rate(m.script)
			if got := sshtest.BLAKE3(t, dst); got != want {
				t.Fatalf("%s: target differs from the source", m.name)
			}
			testutil.Run(t, "blkdiscard", "-f", dst) // the next method starts from zeros
		}
		after := rate(zeros)
		ceiling := max(before, after)
		limit, of := ceiling, "ssh ceiling"
		if link > 0 && link < ceiling {
			limit, of = link, "link"
		}
		fmt.Fprintf(&report, "\n%s; %d MiB mixed ext4 image\n", label, mib)
		fmt.Fprintf(&report, "  %-36s %8.1f MB/s  (%.1f before, %.1f after)\n", "ssh ceiling (zeros to /dev/null)", ceiling, before, after)
		for i, m := range methods {
			fmt.Fprintf(&report, "  %-36s %8.1f MB/s  %5.2f x %s\n", m.name, rates[i], rates[i]/limit, of)
		}
	}
	t.Log(report.String())
	fmt.Print(report.String())
}
