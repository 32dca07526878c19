package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// Tests that blkwrite leaves its target as it was whenever it refuses an
// input, and treats targets it cannot resume onto or write at offsets as
// what they are.

// TestTargetKeptOnBadFirstRecord: a full stream whose first record fails
// its check leaves an existing file as it was, not truncated, and says
// nothing about an incomplete copy (none was made); a failure after the
// first record truncated the file, and says so.
func TestTargetKeptOnBadFirstRecord(t *testing.T) {
	blkwrite := testutil.Tool(t, "blkwrite")
	data := rejectSource()
	good := parseStream(t, makeStream(t, data, "--frame"))
	size := len(data) + 1<<20

	s := good.clone()
	s.recs[0].payload[100] ^= 1
	target := patternFile(t, size)
	_, stderr, code := run(t, s.bytes(), blkwrite, "-q", target)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "checksum mismatch") {
		t.Errorf("damaged first record: exit %d, stderr %q; want 1 and one line", code, stderr)
	}
	untouchedFrom(t, target, 0, size)

	s = good.clone()
	bad := s.recs[len(s.recs)-2] // the last DATA record
	bad.payload[0] ^= 1
	target = patternFile(t, size)
	_, stderr, code = run(t, s.bytes(), blkwrite, "-q", target)
	if code != 1 || !strings.Contains(stderr, "blkwrite: the copy is incomplete: ") {
		t.Errorf("damaged later record: exit %d, stderr %q; want the incomplete-copy warning", code, stderr)
	}
	// Every record before the damaged one is on the target, the damaged
	// one is not, and nothing is left of the old file past the source.
	got := mustRead(t, target)
	if n := bad.offset(); int64(len(got)) > int64(len(data)) || int64(len(got)) < n || !bytes.Equal(got[:n], data[:n]) || len(got) > int(n) && bytes.Equal(got[n:], data[n:len(got)]) {
		t.Errorf("damaged later record: target of %d bytes; want the source's first %d bytes (first difference at %d), not the damaged record, at most %d bytes",
			len(got), n, testutil.FirstDiff(got[:min(int64(len(got)), n)], data[:min(int64(len(got)), n)]), len(data))
	}
}

// TestEmptyInput: blkwrite DST refuses an empty input (a sender that failed
// before its first byte) and leaves DST alone, raw or framed; of=DST copies
// it as dd does, truncating a file.
func TestEmptyInput(t *testing.T) {
	blkwrite := testutil.Tool(t, "blkwrite")
	for _, args := range [][]string{{}, {"--raw"}, {"--framed"}, {"-q"}} {
		target := patternFile(t, 10000)
		_, stderr, code := run(t, []byte{}, blkwrite, append(args, target)...)
		want := fmt.Sprintf("blkwrite: 'standard input' is empty (did the sender fail?): '%s' was left as it was; of=%s copies an empty input as dd does\n", target, target)
		if code != 1 || stderr != want {
			t.Errorf("%q with empty input: exit %d, stderr %q, want 1, %q", args, code, stderr, want)
		}
		untouchedFrom(t, target, 0, 10000)
	}
	target := patternFile(t, 10000)
	if _, stderr, code := run(t, []byte{}, blkwrite, "status=none", "of="+target); code != 0 || stderr != "" {
		t.Errorf("of= with empty input: exit %d, stderr %q", code, stderr)
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != 0 {
		t.Errorf("of= with empty input did not truncate as dd does: %v %v", fi.Size(), err)
	}
}

// TestFramedTargets: operands and targets a framed stream meets.
func TestFramedTargets(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	data := rejectSource()
	stream := makeStream(t, data, "-z", "lz4")
	streamFile := filepath.Join(dir, "kept.blkp")
	writeFile(t, streamFile, stream)

	t.Run("iflag=direct on a kept stream", func(t *testing.T) {
		out := filepath.Join(dir, "direct.img")
		if _, stderr, code := run(t, nil, blkwrite, "if="+streamFile, "iflag=direct", "of="+out); code != 0 || !strings.Contains(stderr, "verified blake3 ") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !bytes.Equal(mustRead(t, out), data) {
			t.Error("target differs from the source")
		}
	})

	t.Run("oflag=append refused", func(t *testing.T) {
		target := patternFile(t, 5000)
		_, stderr, code := run(t, stream, blkwrite, "oflag=append", "of="+target)
		want := "blkwrite: you probably want conv=notrunc with oflag=append\n" + // dd's warning for the operands
			"blkwrite: a framed stream places its own data: seek=, skip=, count=, conv=sparse and oflag=append do not apply (use --raw to copy the stream itself)\n" +
			"Try 'blkwrite --help' for more information.\n"
		if code != 2 || stderr != want {
			t.Errorf("exit %d, stderr %q, want 2, %q", code, stderr, want)
		}
		untouchedFrom(t, target, 0, 5000)
	})

	t.Run("standard output opened for appending", func(t *testing.T) {
		out := filepath.Join(dir, "appended")
		writeFile(t, out, []byte("head"))
		if _, stderr, code := sh(t, nil, fmt.Sprintf("$BW -q < %s >> %s", streamFile, out)); code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if got := mustRead(t, out); !bytes.Equal(got, append([]byte("head"), data...)) {
			t.Errorf("appended %d bytes, want head + the %d-byte source", len(got), len(data))
		}
	})

	t.Run("no resume point for /dev/null", func(t *testing.T) {
		s := parseStream(t, stream)
		cut := stream[:s.at(len(s.recs)-2)+10] // in the last DATA record
		_, stderr, code := run(t, cut, blkwrite, "/dev/null")
		if code != 1 || !strings.Contains(stderr, "stream truncated") || strings.Contains(stderr, "resume point") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if _, stderr, code := run(t, nil, blkwrite, "--resume-point", "/dev/null"); code != 1 || !strings.HasPrefix(stderr, "blkwrite: no interrupted copy to resume on '/dev/null'") {
			t.Errorf("--resume-point /dev/null: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("conv=notrunc onto a larger file", func(t *testing.T) {
		size := len(data) + 12345
		target := patternFile(t, size)
		_, stderr, code := run(t, stream, blkwrite, "conv=notrunc", "of="+target)
		note := fmt.Sprintf("blkwrite: note: '%s' is %d bytes, larger than the source (%d bytes); its last 12345 bytes are left as they are\n", target, size, len(data))
		if code != 0 || !strings.HasPrefix(stderr, note) {
			t.Errorf("exit %d, stderr %q, want it to start with %q", code, stderr, note)
		}
		got := mustRead(t, target)
		if !bytes.Equal(got[:len(data)], data) {
			t.Error("target does not start with the source")
		}
		untouchedFrom(t, target, int64(len(data)), size)
		// -q (status=none) prints no notes, only errors and the verdict.
		_, stderr, code = run(t, stream, blkwrite, "-q", "conv=notrunc", "of="+target)
		if code != 0 || strings.Contains(stderr, "note:") || !strings.HasPrefix(stderr, "blkwrite: verified blake3 ") {
			t.Errorf("-q: exit %d, stderr %q", code, stderr)
		}
		if got := mustRead(t, target); !bytes.Equal(got[:len(data)], data) {
			t.Error("-q: target does not start with the source")
		}
		untouchedFrom(t, target, int64(len(data)), size)
	})
}

// TestDeltaTargets: a delta stream needs the target it continues and a
// declared size.
func TestDeltaTargets(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	blkwrite := testutil.Tool(t, "blkwrite")
	dir := t.TempDir()
	base := randomBytes(1<<20, 21)
	src := append([]byte(nil), base...)
	copy(src[4096*7:], randomBytes(4096, 22))
	basePath, srcPath := filepath.Join(dir, "base"), filepath.Join(dir, "src")
	writeFile(t, basePath, base)
	writeFile(t, srcPath, src)
	sums, _, code := run(t, nil, blkcat, "-q", "--sums", basePath)
	if code != 0 {
		t.Fatal("--sums failed")
	}
	sumsPath := filepath.Join(dir, "sums")
	writeFile(t, sumsPath, []byte(sums))
	delta, _, code := run(t, nil, blkcat, "-q", "--against", sumsPath, srcPath)
	if code != 0 {
		t.Fatal("--against failed")
	}

	missing := filepath.Join(dir, "missing")
	_, stderr, code := run(t, []byte(delta), blkwrite, missing)
	if want := fmt.Sprintf("blkwrite: failed to open '%s': No such file or directory\n", missing); code != 1 || stderr != want {
		t.Errorf("delta onto a missing file: exit %d, stderr %q, want %q", code, stderr, want)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("delta onto a missing file created it: %v", err)
	}

	s := parseStream(t, []byte(delta))
	le.PutUint64(s.hdr[hSize:], ^uint64(0)) // source size -1
	s.sealHeader()
	target := filepath.Join(dir, "target")
	writeFile(t, target, base)
	_, stderr, code = run(t, s.bytes(), blkwrite, "--no-verify", target)
	want := fmt.Sprintf("blkwrite: a delta or resumed stream must declare its source size; this one does not (source size -1); nothing was written to '%s'\n", target)
	if code != 1 || stderr != want {
		t.Errorf("delta of unknown size: exit %d, stderr %q, want %q", code, stderr, want)
	}
	if !bytes.Equal(mustRead(t, target), base) {
		t.Error("a refused delta changed the target")
	}
}

// TestSenderFailureNoEnd: when blkcat --frame fails (here: skip= beyond an
// off_t, so the stream's size is not known), its stream has no END, and
// blkwrite reports it as cut, never as a verified copy, leaving an
// existing target as it was.
func TestSenderFailureNoEnd(t *testing.T) {
	testutil.NeedCmd(t, "bash")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, randomBytes(513, 3))
	target := patternFile(t, 4096)
	_, stderr, code := sh(t, nil, fmt.Sprintf("$BC -q --frame if=%s skip=1E | $BW -q %s", src, target))
	if code != 1 || !strings.Contains(stderr, "cannot skip") || !strings.Contains(stderr, "stream truncated: end of input before END record") || strings.Contains(stderr, "verified") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	untouchedFrom(t, target, 0, 4096)
}

// TestNoNewFileInDev: a target in /dev that does not exist (a backup
// volume not active after a reboot, a mistyped name) is refused, raw or
// framed, bare or of=, and no file is made there: dd would write the whole
// copy into devtmpfs, in RAM, and exit 0, and replicate.sh would report
// the copy verified.
func TestNoNewFileInDev(t *testing.T) {
	testutil.NeedRoot(t)
	blkwrite := testutil.Tool(t, "blkwrite")
	dst := fmt.Sprintf("/dev/blkpipe-test-%d-missing", os.Getpid())
	t.Cleanup(func() { os.Remove(dst) })
	raw := rejectSource()
	framed := makeStream(t, raw, "--frame")
	want := "blkwrite: '" + dst + "' does not exist (is the volume active? is the name right?); blkwrite does not create files in /dev\n"
	for _, tc := range []struct {
		name  string
		input []byte
		args  []string
	}{
		{"raw", raw, []string{"-q", dst}},
		{"raw of=", raw, []string{"status=none", "of=" + dst}},
		{"framed", framed, []string{"-q", dst}},
		{"framed of=", framed, []string{"status=none", "of=" + dst}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.input, blkwrite, tc.args...)
			_, err := os.Lstat(dst)
			os.Remove(dst)
			if code != 1 || stderr != want || err == nil {
				t.Errorf("exit %d, stderr %q, %s exists: %v; want exit 1, %q, and no file", code, stderr, dst, err == nil, want)
			}
		})
	}
	// /dev/shm is a file system of its own, where files belong.
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		var shm, dev syscall.Stat_t
		if syscall.Stat("/dev/shm", &shm) == nil && syscall.Stat("/dev", &dev) == nil && shm.Dev != dev.Dev {
			f := fmt.Sprintf("/dev/shm/blkpipe-test-%d", os.Getpid())
			t.Cleanup(func() { os.Remove(f) })
			if _, stderr, code := run(t, raw, blkwrite, "-q", f); code != 0 {
				t.Errorf("new file in /dev/shm: exit %d, stderr %q", code, stderr)
			}
			if got := mustRead(t, f); !bytes.Equal(got, raw) {
				t.Errorf("new file in /dev/shm: %d bytes, first difference from the %d-byte source at %d", len(got), len(raw), testutil.FirstDiff(got, raw))
			}
		}
	}
}
