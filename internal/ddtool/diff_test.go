package ddtool_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// inputKind says how a case feeds its input.
type inputKind int

const (
	inFile    inputKind = iota // if=IN, a regular file
	inStdin                    // < IN: standard input is the regular file
	inPipe                     // a pipe, written in chunks that are multiples of 4096
	inDribble                  // a pipe written in the case's chunks with pauses
	inDevice                   // if=DEV, a loop device holding the data
)

type diffCase struct {
	name    string
	ops     string // operands; IN, OUT, DEV are replaced
	in      inputKind
	size    int   // input size (default 1 MiB + 1234)
	zeros   bool  // input has long zero runs (for conv=sparse)
	chunks  []int // inDribble: write sizes
	outPre  int   // OUT exists beforehand with this many bytes of 0xEE (0: absent)
	outDev  int   // the output is a loop device of this size (OUT is replaced by it)
	wantErr bool  // dd exits non-zero
}

var ddCases = []diffCase{
	{name: "defaults", ops: "if=IN"},
	{name: "bs4k", ops: "if=IN bs=4096"},
	{name: "bs1M", ops: "if=IN bs=1M"},
	{name: "ibs1000-obs3000", ops: "if=IN ibs=1000 obs=3000"},
	{name: "count", ops: "if=IN bs=512 count=10"},
	{name: "count-skip", ops: "if=IN bs=4096 count=3 skip=2"},
	{name: "ibs-obs-count", ops: "if=IN ibs=4096 obs=512 count=5"},
	{name: "skip-default-ibs", ops: "if=IN skip=3"},
	{name: "odd-bs-skip-count", ops: "if=IN bs=1000 skip=1 count=2"},
	{name: "count-bytes", ops: "if=IN iflag=count_bytes count=12345"},
	{name: "skip-bytes", ops: "if=IN iflag=skip_bytes skip=777 count=5"},
	{name: "skip-count-bytes", ops: "if=IN iflag=skip_bytes,count_bytes skip=777 count=9999 bs=4096"},
	{name: "iseek", ops: "if=IN iseek=2 bs=4096 count=2"},
	{name: "sync-bs", ops: "if=IN bs=3000 conv=sync"},
	{name: "sync-ibs-obs", ops: "if=IN ibs=1000 conv=sync obs=4096"},
	{name: "of-file", ops: "if=IN of=OUT bs=64K"},
	{name: "seek-truncates", ops: "if=IN of=OUT seek=3 bs=1000", outPre: 2 << 20},
	{name: "seek-notrunc", ops: "if=IN of=OUT seek=3 bs=1000 conv=notrunc", outPre: 2 << 20},
	{name: "oseek", ops: "if=IN of=OUT oseek=2 bs=4096", outPre: 100},
	{name: "seek-bytes", ops: "if=IN of=OUT oflag=seek_bytes seek=1234 bs=4096"},
	{name: "sparse-bs", ops: "if=IN of=OUT conv=sparse bs=4096", zeros: true},
	{name: "sparse-default", ops: "if=IN of=OUT conv=sparse", zeros: true},
	{name: "sparse-zero-tail", ops: "if=IN of=OUT conv=sparse bs=64K", zeros: true, size: 3 << 20},
	{name: "status-none", ops: "if=IN status=none"},
	{name: "status-noxfer", ops: "if=IN status=noxfer"},
	{name: "count-zero", ops: "if=IN count=0"},
	{name: "skip-past-eof", ops: "if=IN skip=100000"},
	{name: "short-input", ops: "if=IN bs=1M count=1", size: 5000},
	{name: "empty-input", ops: "if=IN", size: -1},
	{name: "notrunc", ops: "if=IN of=OUT conv=notrunc", outPre: 3 << 20},
	{name: "excl-new", ops: "if=IN of=OUT conv=excl bs=8K"},
	{name: "excl-exists", ops: "if=IN of=OUT conv=excl", outPre: 10, wantErr: true},
	{name: "nocreat-missing", ops: "if=IN of=OUT conv=nocreat", wantErr: true},
	{name: "nocreat-exists", ops: "if=IN of=OUT conv=nocreat bs=4K", outPre: 10},
	{name: "fullblock", ops: "if=IN iflag=fullblock bs=4096"},
	{name: "odd-ibs-obs-count", ops: "if=IN obs=7 ibs=13 count=100"},
	{name: "product-number", ops: "if=IN bs=2x512 count=3"},
	{name: "suffixes", ops: "if=IN bs=1KiB count=2b"},
	{name: "fsync", ops: "if=IN of=OUT conv=fsync bs=64K"},
	{name: "fdatasync", ops: "if=IN of=OUT conv=fdatasync"},
	{name: "append", ops: "if=IN of=OUT oflag=append conv=notrunc bs=4K", outPre: 1000},
	{name: "iflag-direct", ops: "if=IN iflag=direct bs=64K"},
	{name: "stdin-file", ops: "bs=4K", in: inStdin},
	{name: "stdin-file-skip", ops: "bs=4K skip=3 count=2", in: inStdin},
	{name: "pipe-defaults", ops: "", in: inPipe},
	{name: "pipe-bs4k", ops: "bs=4096", in: inPipe},
	{name: "pipe-skip", ops: "skip=5 bs=512", in: inPipe},
	{name: "pipe-fullblock", ops: "iflag=fullblock bs=3000 count=5", in: inPipe},
	{name: "pipe-of-file", ops: "of=OUT bs=64K", in: inPipe},
	{name: "dribble-bs512", ops: "bs=512", in: inDribble, chunks: []int{100, 700, 512, 1, 3000, 50}},
	{name: "dribble-reblock", ops: "", in: inDribble, chunks: []int{100, 700, 512, 1, 3000, 50}},
	{name: "dribble-count-warns", ops: "bs=1000 count=4", in: inDribble, chunks: []int{300, 1000, 2000, 999, 5000}},
	{name: "dribble-fullblock", ops: "iflag=fullblock bs=1000 count=3", in: inDribble, chunks: []int{300, 1000, 2000, 999, 5000}},
	{name: "dribble-sync", ops: "conv=sync bs=1000", in: inDribble, chunks: []int{300, 1000, 1, 4444}},
	{name: "dribble-skip", ops: "skip=2 bs=1000", in: inDribble, chunks: []int{300, 1000, 1, 4444}},
	{name: "dribble-count-bytes", ops: "iflag=count_bytes count=1500 bs=1000", in: inDribble, chunks: []int{300, 1000, 1, 4444}},
	{name: "dribble-ibs-obs", ops: "ibs=1000 obs=300", in: inDribble, chunks: []int{300, 1000, 1, 4444}},
	{name: "dribble-of-file-sync", ops: "of=OUT ibs=512 conv=sync", in: inDribble, chunks: []int{7, 512, 600}},
	{name: "device-in-4k", ops: "if=DEV bs=4096", in: inDevice},
	{name: "device-in-default", ops: "if=DEV", in: inDevice},
	{name: "device-in-skip-count", ops: "if=DEV bs=1000 skip=7 count=50", in: inDevice},
	// Inputs of several whole chunks, read with O_DIRECT through native
	// AIO (and through pread, the -pread runs), with an unaligned tail.
	{name: "chunks-aio", ops: "if=IN bs=1M", size: 13<<20 + 1234},
	{name: "chunks-aio-skip-count", ops: "if=IN bs=4096 skip=3 count=2500", size: 13<<20 + 1234},
	{name: "device-chunks-aio", ops: "if=DEV bs=64K", in: inDevice, size: 13<<20 + 1024},
	{name: "device-out", ops: "if=IN of=OUT bs=64K", outDev: 2 << 20},
	{name: "device-out-seek", ops: "if=IN of=OUT seek=3 bs=4096", outDev: 2 << 20},
	{name: "device-out-notrunc-small", ops: "if=IN of=OUT", size: 300000, outDev: 1 << 20},
	{name: "missing-input", ops: "if=IN.missing", wantErr: true},
	{name: "directory-input", ops: "if=DIR", wantErr: true},
	{name: "proc-mem-unreadable", ops: "if=/proc/self/mem count=1", wantErr: true},
}

var caseDirs = map[string]string{}

// caseDir is one directory per test case, shared by the dd run and the
// tool's run, so file names in messages are the same.
func caseDir(t *testing.T) string {
	if d, ok := caseDirs[t.Name()]; ok {
		return d
	}
	d := t.TempDir()
	caseDirs[t.Name()] = d
	return d
}

var timeRE = regexp.MustCompile(`copied, [0-9.e+-]+ s, [^\n]*`)

// mask hides what differs between two runs of the same copy: the time and
// the rate, and the program name.
func mask(stderr, prog string) string {
	s := timeRE.ReplaceAllString(stderr, "copied, T s, R")
	s = strings.ReplaceAll(s, strings.TrimSuffix(prog, preadSuffix)+": ", "PROG: ")
	return s
}

type result struct {
	out    []byte // stdout, or the output file/device content
	stderr string
	code   int
}

// preadSuffix names a run of blkcat with native AIO off (BLKPIPE_AIO=0),
// so both of its ways of reading a file or device with O_DIRECT are held
// to dd's output.
const preadSuffix = "-pread"

// ddProgs are the runs held to dd's output, in order: blkcat, blkcat
// reading with pread (preadSuffix), blkwrite.
var ddProgs = []string{"blkcat", "blkcat" + preadSuffix, "blkwrite"}

// ddTools maps each of ddProgs to its built binary.
func ddTools(t *testing.T) map[string]string {
	blkcat := testutil.Tool(t, "blkcat")
	return map[string]string{"blkcat": blkcat, "blkcat" + preadSuffix: blkcat, "blkwrite": testutil.Tool(t, "blkwrite")}
}

// compareToDD fails t unless prog's run got matches dd's run want: the
// same exit code, the same output bytes, and the same stderr once norm has
// masked what may differ (times, rates, the program's name).
func compareToDD(t *testing.T, prog string, got, want result, norm func(stderr, prog string) string) {
	t.Helper()
	if got.code != want.code {
		t.Errorf("%s exit %d, dd exit %d\n%s stderr:\n%s\ndd stderr:\n%s", prog, got.code, want.code, prog, got.stderr, want.stderr)
	}
	if !bytes.Equal(got.out, want.out) {
		t.Errorf("%s output differs from dd's: %d bytes (sha256 %x) vs %d bytes (sha256 %x)",
			prog, len(got.out), sha256.Sum256(got.out), len(want.out), sha256.Sum256(want.out))
	}
	if g, w := norm(got.stderr, prog), norm(want.stderr, "dd"); g != w {
		t.Errorf("%s stderr differs from dd's:\n--- %s\n%s--- dd\n%s", prog, prog, g, w)
	}
}

func TestDifferentialDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	tools := ddTools(t)
	for _, tc := range ddCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == inDevice || tc.outDev > 0 {
				testutil.NeedRoot(t)
			}
			for _, prog := range ddProgs {
				if tc.outDev > 0 && prog == "blkwrite" {
					continue // blkwrite guards devices; TestWriteGuard covers it
				}
				attempts := 1
				if tc.in == inDribble {
					attempts = 3 // pipe timing on a loaded machine can merge chunks
				}
				var want, got result
				for a := 0; a < attempts; a++ {
					want = runCase(t, tc, "dd", "dd")
					got = runCase(t, tc, prog, tools[prog])
					if mask(want.stderr, "dd") == mask(got.stderr, prog) {
						break
					}
				}
				if (want.code != 0) != tc.wantErr {
					t.Fatalf("dd exit %d, case expects error=%v; stderr:\n%s", want.code, tc.wantErr, want.stderr)
				}
				compareToDD(t, prog, got, want, mask)
			}
		})
	}
}

func inputData(tc diffCase) []byte {
	size := tc.size
	if size == 0 {
		size = 1<<20 + 1234
	}
	if size < 0 {
		return nil
	}
	if tc.in == inDribble {
		size = 0
		for _, c := range tc.chunks {
			size += c
		}
	}
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if tc.zeros {
		// Zero runs of varied lengths and alignments, and a zero tail.
		for off := 1000; off < len(data); off += 300000 {
			clear(data[off:min(off+150000, len(data))])
		}
		clear(data[len(data)-70000:])
	}
	if tc.in == inDevice {
		data = data[:len(data)/512*512] // a loop device holds whole sectors
	}
	return data
}

// runCase runs one program on a fresh copy of the case's setup.
func runCase(t *testing.T, tc diffCase, prog, bin string) result {
	t.Helper()
	dir := filepath.Join(caseDir(t), "w")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := inputData(tc)
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if tc.outPre > 0 {
		if err := os.WriteFile(out, bytes.Repeat([]byte{0xEE}, tc.outPre), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if tc.outDev > 0 {
		img := filepath.Join(dir, "outdev.img")
		if err := os.WriteFile(img, bytes.Repeat([]byte{0xEE}, tc.outDev), 0o644); err != nil {
			t.Fatal(err)
		}
		out = testutil.LoopDevice(t, img)
	}
	dev := ""
	if tc.in == inDevice {
		dev = testutil.LoopDevice(t, in)
	}
	ops := strings.NewReplacer("IN", in, "OUT", out, "DEV", dev, "DIR", dir).Replace(tc.ops)
	args := strings.Fields(ops)
	cmd := exec.Command(bin, args...)
	if strings.HasSuffix(prog, preadSuffix) {
		cmd.Env = append(os.Environ(), "BLKPIPE_AIO=0")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var feed func(w *os.File)
	switch tc.in {
	case inStdin:
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	case inPipe, inDribble:
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cmd.Stdin = r
		chunks := tc.chunks
		pause := 30 * time.Millisecond
		if tc.in == inPipe {
			chunks = nil
			for n := len(data); n > 0; n -= 64 << 10 {
				chunks = append(chunks, min(n, 64<<10))
			}
			pause = 0
		}
		feed = func(w *os.File) {
			defer w.Close()
			off := 0
			for _, c := range chunks {
				if pause > 0 {
					time.Sleep(pause)
				}
				if _, err := w.Write(data[off : off+c]); err != nil {
					return // the reader stopped early (count=)
				}
				off += c
			}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if tc.in == inDribble {
			// Write each chunk only once the reader has drained the pipe,
			// so every read sees exactly one chunk however loaded the
			// machine is.
			feedOne := feed
			feed = func(w *os.File) {
				drained := func() {
					for i := 0; i < 2000; i++ {
						n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
						if err != nil || n == 0 {
							return
						}
						time.Sleep(time.Millisecond)
					}
				}
				_ = feedOne
				defer w.Close()
				off := 0
				for _, c := range chunks {
					drained()
					time.Sleep(pause)
					if _, err := w.Write(data[off : off+c]); err != nil {
						return
					}
					off += c
				}
			}
		}
		if tc.in == inPipe {
			r.Close() // so an early exit (count=) gives the feeder EPIPE
		}
		feed(w)
		r.Close()
	default:
		cmd.Stdin = nil
	}
	var err error
	if feed == nil {
		err = cmd.Run()
	} else {
		err = cmd.Wait()
	}
	res := result{stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", prog, err)
		}
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.code = 128 + int(ws.Signal())
		}
	}
	res.out = stdout.Bytes()
	if strings.Contains(tc.ops, "of=") {
		b, rerr := os.ReadFile(out)
		if rerr != nil && !os.IsNotExist(rerr) {
			t.Fatal(rerr)
		}
		res.out = append(res.out, b...)
		if tc.outDev == 0 {
			if fi, err := os.Stat(out); err == nil {
				res.out = append(res.out, []byte(fmt.Sprintf("|size=%d", fi.Size()))...)
			}
		}
	}
	// Normalise the program name in paths (none) and keep stderr as is.
	return res
}
