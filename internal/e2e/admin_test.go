package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// onTerminal runs cmd with its stdout (or its stderr, if stderr is set)
// on a new pseudo-terminal and returns what the terminal received, the
// other stream and the exit code.
func onTerminal(t *testing.T, cmd *exec.Cmd, stderr bool) (term, other string, code int) {
	t.Helper()
	master, slave := testutil.OpenPTY(t)
	var buf bytes.Buffer
	if stderr {
		cmd.Stderr, cmd.Stdout = slave, &buf
	} else {
		cmd.Stdout, cmd.Stderr = slave, &buf
	}
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(master) // until EIO: every slave closed
		read <- b
	}()
	err := cmd.Run()
	slave.Close()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-read:
		term = string(b)
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal did not close within 10 s")
	}
	return term, buf.String(), code
}

// TestBinaryToTerminal: blkcat refuses to write a framed stream or block
// sums to a terminal, before reading, as zstd refuses (status 1), unless
// forced with -f; raw data goes to a terminal as dd's does.
func TestBinaryToTerminal(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	data := bytes.Repeat([]byte("blkpipe\n"), 8192)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sums := filepath.Join(dir, "sums")
	cmd := exec.Command(blkcat, "--sums", "-q", img)
	cmd.Env = append(os.Environ(), "BLKPIPE_STATE_DIR="+dir)
	if out, err := cmd.Output(); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(sums, out, 0o644); err != nil {
		t.Fatal(err)
	}
	const refused = "blkcat: standard output is a terminal: refusing to write a binary stream to it; redirect it (> FILE, | blkwrite DST) or use -f to force\n"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // what stderr is, or "" for dd's report
	}{
		{"lz4", []string{"-z", "lz4", img}, 1, refused},
		{"frame", []string{"--frame", img}, 1, refused},
		{"sums", []string{"--sums", img}, 1, refused},
		{"against", []string{"--against", sums, img}, 1, refused},
		{"resume", []string{"--resume", "x:0:1:0", img}, 1, refused},
		{"forced", []string{"-f", "-z", "lz4", img}, 0, ""},
		{"force", []string{"--force", "--frame", img}, 0, ""},
		{"raw", []string{img}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(blkcat, tc.args...)
			cmd.Env = append(os.Environ(), "BLKPIPE_STATE_DIR="+t.TempDir())
			term, stderr, code := onTerminal(t, cmd, false)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if tc.want != "" {
				if stderr != tc.want || term != "" {
					t.Fatalf("stderr %q, terminal %q; want stderr %q and nothing on the terminal", stderr, term, tc.want)
				}
				return
			}
			least := 1 // a stream of repeated text compresses well
			if tc.name == "raw" {
				least = len(data)
			}
			if !strings.Contains(stderr, "records out\n") || len(term) < least {
				t.Fatalf("stderr %q, %d bytes on the terminal: want dd's report and the output", stderr, len(term))
			}
		})
	}
}

// TestProgressBar: blkcat --progress draws pv's bar on a terminal stderr
// in source bytes (a compressed stream's bar ends at 100 % of the image),
// ends it with a newline before dd's report, draws nothing off a terminal
// unless forced with -f, and refuses status=progress beside it.
func TestProgressBar(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{1}, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	term, _, code := onTerminal(t, exec.Command(blkcat, "--progress", "-z", "zstd", "of=/dev/null", img), true)
	term = strings.ReplaceAll(term, "\r\n", "\n") // the terminal's ONLCR
	if code != 0 {
		t.Fatalf("exit %d: %q", code, term)
	}
	bar, report, ok := strings.Cut(term, "\n")
	if !ok || !strings.HasPrefix(bar, "\r") || !strings.Contains(bar, "4.0 MiB") || !strings.Contains(bar, "] 100% ETA 0:00:00") {
		t.Fatalf("terminal shows %q: want pv's bar at 4.0 MiB and 100%%, then dd's report", term)
	}
	if !strings.HasPrefix(report, "8192+0 records in\n8192+0 records out\n4194304 bytes") {
		t.Fatalf("after the bar: %q, want dd's report", report)
	}

	_, plain, _ := run(t, nil, blkcat, "-z", "zstd", "of=/dev/null", img)
	_, off, _ := run(t, nil, blkcat, "--progress", "-z", "zstd", "of=/dev/null", img)
	if strings.Contains(off, "\r") || strings.Count(off, "\n") != strings.Count(plain, "\n") {
		t.Fatalf("--progress off a terminal printed %q, want dd's report alone (%q)", off, plain)
	}
	_, forced, _ := run(t, nil, blkcat, "--progress", "-f", "of=/dev/null", img)
	if !strings.HasPrefix(forced, "\r") || !strings.Contains(forced, "100%") {
		t.Fatalf("--progress -f off a terminal printed %q, want the bar", forced)
	}
	_, stderr, code := run(t, nil, blkcat, "--progress", "status=progress", img)
	if code != 2 || !strings.Contains(stderr, "--progress and status=progress cannot be combined") {
		t.Fatalf("--progress status=progress: exit %d, %q", code, stderr)
	}
}

// summaryLine is the --json line's members the tests check.
type summaryLine struct {
	TS         string   `json:"ts"`
	Tool       string   `json:"tool"`
	Result     string   `json:"result"`
	Error      string   `json:"error"`
	Path       string   `json:"path"`
	Source     string   `json:"source"`
	Target     string   `json:"target"`
	BytesIn    int64    `json:"bytes_in"`
	BytesOut   int64    `json:"bytes_out"`
	RecordsIn  records  `json:"records_in"`
	RecordsOut records  `json:"records_out"`
	Seconds    *float64 `json:"seconds"`
	Rate       *float64 `json:"rate"`
	DigestAlg  string   `json:"digest_alg"`
	Digest     string   `json:"digest"`
	Verified   *bool    `json:"verified"`
	ExitStatus int      `json:"exit_status"`
}

// records are dd's counts in the summary.
type records struct {
	Full    int64 `json:"full"`
	Partial int64 `json:"partial"`
}

// lastJSON parses stderr's last line as the --json summary.
func lastJSON(t *testing.T, stderr string) summaryLine {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var s summaryLine
	dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("last line of stderr %q: %v", stderr, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, s.TS); err != nil || !strings.HasSuffix(s.TS, "Z") {
		t.Fatalf("ts %q is not RFC 3339 UTC: %v", s.TS, err)
	}
	if s.Seconds == nil || s.Rate == nil {
		t.Fatalf("no seconds or rate in %q", lines[len(lines)-1])
	}
	return s
}

// TestJSONSummary: blkcat and blkwrite --json end stderr with one JSON
// object saying what was copied, how, and with which digest: the same
// digest on both sides, b3sum's, for a full copy and a delta; a failure
// says so in the line, after the message.
func TestJSONSummary(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	state := "BLKPIPE_STATE_DIR=" + dir
	img, dst := filepath.Join(dir, "img"), filepath.Join(dir, "dst")
	data := make([]byte, 3<<20+512)
	for i := range data {
		data[i] = byte(i * 7 / 4096)
	}
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := testutil.Run(t, "b3sum", "--no-names", img)

	stream, catErr, code := run(t, nil, blkcat, "-z", "lz4", "--json", img)
	if code != 0 {
		t.Fatalf("blkcat: exit %d: %s", code, catErr)
	}
	c := lastJSON(t, catErr)
	if c.Tool != "blkcat" || c.Result != "ok" || c.Path != "full" || c.Source != img || c.Target != "standard output" ||
		c.BytesIn != int64(len(data)) || c.BytesOut != int64(len(stream)) || c.RecordsIn.Full != int64(len(data)/512) ||
		c.DigestAlg != "blake3" || c.Digest+"\n" != want || c.ExitStatus != 0 || c.Error != "" {
		t.Fatalf("blkcat's summary %+v: want a full copy of %d bytes into %d, digest %s", c, len(data), len(stream), want)
	}
	cmd := exec.Command(blkwrite, "--json", dst)
	cmd.Stdin = strings.NewReader(stream)
	cmd.Env = append(os.Environ(), state)
	_, wErr, code := runCmd(t, cmd)
	w := lastJSON(t, wErr)
	if code != 0 || w.Tool != "blkwrite" || w.Result != "ok" || w.Path != "full" || w.Target != dst ||
		w.BytesIn != int64(len(stream)) || w.BytesOut != int64(len(data)) || w.Digest != c.Digest ||
		w.Verified == nil || !*w.Verified {
		t.Fatalf("blkwrite: exit %d, summary %+v; want the stream verified with blkcat's digest", code, w)
	}

	// A delta after a change: the path says so, the digest is still the
	// whole source's.
	copy(data[1<<20:], "changed")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", "-c", `"$0" --sums "$2" | "$0" --against - -z lz4 --json "$3" 2>cat.err | "$1" --json "$2" 2>write.err`, blkcat, blkwrite, dst, img)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), state)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("delta: %v: %s", err, out)
	}
	catErrB, _ := os.ReadFile(filepath.Join(dir, "cat.err"))
	writeErrB, _ := os.ReadFile(filepath.Join(dir, "write.err"))
	c, w = lastJSON(t, string(catErrB)), lastJSON(t, string(writeErrB))
	want = testutil.Run(t, "b3sum", "--no-names", img)
	if c.Path != "delta" || w.Path != "delta" || c.Digest+"\n" != want || w.Digest != c.Digest || c.BytesIn != int64(len(data)) || c.BytesOut >= int64(len(data))/2 {
		t.Fatalf("delta summaries %+v and %+v: want path delta, digest %s", c, w, want)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatalf("after the delta the target differs at byte %d", testutil.FirstDiff(got, data))
	}

	// A raw copy, and a failure, which still ends with the line.
	_, rawErr, _ := run(t, data, blkwrite, "--json", filepath.Join(dir, "raw"))
	if r := lastJSON(t, rawErr); r.Path != "raw" || r.Result != "ok" || r.BytesOut != int64(len(data)) || r.Digest != "" || r.RecordsOut.Full != int64(len(data)/512) {
		t.Fatalf("raw summary %+v", r)
	}
	_, failErr, code := run(t, data, blkwrite, "--json", "--framed", filepath.Join(dir, "raw"))
	f := lastJSON(t, failErr)
	if code != 1 || f.Result != "failed" || f.ExitStatus != 1 || !strings.Contains(f.Error, "is not a framed stream") ||
		!strings.HasPrefix(failErr, "blkwrite: 'standard input' is not a framed stream") {
		t.Fatalf("--framed with raw input: exit %d, stderr %q", code, failErr)
	}
}
