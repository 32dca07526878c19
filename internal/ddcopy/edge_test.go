package ddcopy

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
	"golang.org/x/sys/unix"
)

// These tests drive the engine as the tools do, through the exported
// Copier, with the offsets and sizes dd users type that once overflowed or
// were worded unlike dd.

// input opens path, or takes f, and describes it as ddtool does.
func input(tb testing.TB, f *os.File) Input {
	tb.Helper()
	in := Input{F: f, Name: filepath.Base(f.Name()), Size: -1}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		in.Seekable, in.Size = true, fi.Size()
	}
	return in
}

// runCopy runs a copy with a deadline and returns its error and stderr.
func runCopy(tb testing.TB, p Params, in Input, out Output) (error, string) {
	tb.Helper()
	var stderr bytes.Buffer
	c := &Copier{P: p, In: in, Out: out, R: progress.NewDD(&stderr, "blkcat", progress.LevelDefault)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		return err, stderr.String()
	case <-time.After(30 * time.Second):
		tb.Fatal("the copy did not end")
		return nil, ""
	}
}

func tempFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func openRead(tb testing.TB, path string) *os.File {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

func openWrite(tb testing.TB, path string, flag int) *os.File {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// pipeOf returns the read end of a pipe that yields data, then EOF.
func pipeOf(tb testing.TB, data []byte) *os.File {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	go func() {
		w.Write(data)
		w.Close()
	}()
	return r
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestHugeCount: count= times ibs beyond an off_t is no limit, as dd's
// count=1E copies everything (it once wrapped to 0 bytes, spun forever on
// a pipe, or panicked with bs=1G).
func TestHugeCount(t *testing.T) {
	data := randomBytes(513, 1)
	for _, tc := range []struct {
		name string
		ibs  int
		in   func(t *testing.T) *os.File
	}{
		{"file count=1E", 512, func(t *testing.T) *os.File { return openRead(t, tempFile(t, "f513", data)) }},
		{"pipe count=1E", 512, func(t *testing.T) *os.File { return pipeOf(t, data) }},
		{"pipe bs=1G count=9999999999", 1 << 30, func(t *testing.T) *os.File { return pipeOf(t, data) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := int64(1) << 60
			if tc.ibs == 1<<30 {
				count = 9999999999
			}
			p := Params{IBS: tc.ibs, OBS: tc.ibs, Reblock: tc.ibs == 512, Count: count}
			outPath := filepath.Join(t.TempDir(), "out")
			err, stderr := runCopy(t, p, input(t, tc.in(t)), Output{F: openWrite(t, outPath, 0), Name: "out"})
			if err != nil {
				t.Fatalf("copy: %v\n%s", err, stderr)
			}
			if got, _ := os.ReadFile(outPath); !bytes.Equal(got, data) {
				t.Errorf("copied %d bytes, want all %d", len(got), len(data))
			}
		})
	}
}

// TestSkipSeekBeyondOffT: a skip= or seek= whose offset does not fit an
// off_t fails on a seekable file as dd's does, instead of wrapping around
// to offset 0 and copying the whole input (seek=1E once wrote at 0).
func TestSkipSeekBeyondOffT(t *testing.T) {
	data := randomBytes(4096, 2)
	inPath := tempFile(t, "f4k", data)
	const e = int64(1) << 60 // 1E blocks of 512 bytes is 2^69 bytes

	t.Run("skip", func(t *testing.T) {
		outPath := filepath.Join(t.TempDir(), "out")
		err, _ := runCopy(t, Params{IBS: 512, OBS: 512, Reblock: true, Count: -1, Skip: e},
			input(t, openRead(t, inPath)), Output{F: openWrite(t, outPath, 0), Name: "out"})
		if want := "f4k: cannot skip: Value too large for defined data type"; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		if got, _ := os.ReadFile(outPath); len(got) != 0 {
			t.Errorf("%d bytes were copied", len(got))
		}
	})
	t.Run("seek", func(t *testing.T) {
		before := bytes.Repeat([]byte{0xEE}, 8192)
		outPath := tempFile(t, "target", before)
		err, _ := runCopy(t, Params{IBS: 512, OBS: 512, Reblock: true, Count: -1, Seek: e},
			input(t, openRead(t, inPath)), Output{F: openWrite(t, outPath, 0), Name: "target"})
		if want := "target: cannot seek: Value too large for defined data type"; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		if got, _ := os.ReadFile(outPath); !bytes.Equal(got, before) {
			t.Errorf("the target was written to")
		}
	})
	t.Run("seek on a pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		err, _ = runCopy(t, Params{IBS: 512, OBS: 512, Reblock: true, Count: -1, Seek: e},
			input(t, openRead(t, inPath)), Output{F: w, Name: "standard output"})
		// dd made no lseek (the offset does not fit), so it names no error.
		if want := "'standard output': cannot seek"; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	})
}

// TestAppendSparse: with O_APPEND, conv=sparse's seeks cannot make holes,
// and dd extends the file at the end to the offset its seeks reached (the
// trailing zeros are kept); zero blocks between data are lost, as in dd.
func TestAppendSparse(t *testing.T) {
	data := randomBytes(100000, 3)
	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"trailing zeros", append(append([]byte(nil), data...), make([]byte, 300000)...)},
		{"zeros between data", append(append(append([]byte(nil), data...), make([]byte, 300000)...), data...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := bytes.Repeat([]byte("Y"), 3000000)
			outPath := tempFile(t, "out", prefix)
			bs := 64 << 10
			err, stderr := runCopy(t, Params{IBS: bs, OBS: bs, Count: -1, Sparse: true},
				input(t, openRead(t, tempFile(t, "in", tc.input))), Output{F: openWrite(t, outPath, os.O_APPEND), Name: "out"})
			if err != nil {
				t.Fatalf("copy: %v\n%s", err, stderr)
			}
			// What dd does: every data block lands at the end of the file;
			// a zero block moves the offset on; at the end, a file shorter
			// than the offset is extended to it.
			want := append([]byte(nil), prefix...)
			pos, lastSeek := int64(0), false
			for off := 0; off < len(tc.input); off += bs {
				blk := tc.input[off:min(off+bs, len(tc.input))]
				if bytes.Count(blk, []byte{0}) == len(blk) {
					pos += int64(len(blk))
					lastSeek = true
					continue
				}
				want = append(want, blk...)
				pos, lastSeek = int64(len(want)), false
			}
			if lastSeek && int64(len(want)) < pos {
				want = append(want, make([]byte, pos-int64(len(want)))...)
			}
			if got, _ := os.ReadFile(outPath); !bytes.Equal(got, want) {
				t.Errorf("output is %d bytes, want dd's %d", len(got), len(want))
			}
		})
	}
}

// TestWriteErrorWording: dd says "writing to" when a full output block
// fails (write_output, reblocking) and "error writing" for the final short
// block or a bs= write (dd_copy).
func TestWriteErrorWording(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		testutil.Skip(t, "no /dev/full")
	}
	f513 := tempFile(t, "f513", randomBytes(513, 4))
	for _, tc := range []struct {
		name string
		p    Params
		pipe [][]byte // pipe input written in these pieces, else f513
		want string
	}{
		{"default obs", Params{IBS: 512, OBS: 512, Reblock: true, Count: -1}, nil, "writing to '/dev/full': No space left on device"},
		{"final short block", Params{IBS: 512, OBS: 1000, Reblock: true, Count: -1}, nil, "error writing '/dev/full': No space left on device"},
		{"ibs=1000", Params{IBS: 1000, OBS: 512, Reblock: true, Count: -1}, nil, "writing to '/dev/full': No space left on device"},
		{"bs=1000", Params{IBS: 1000, OBS: 1000, Count: -1}, nil, "error writing '/dev/full': No space left on device"},
		{"pipe, final short block", Params{IBS: 512, OBS: 1000, Reblock: true, Count: -1}, [][]byte{make([]byte, 513)}, "error writing '/dev/full': No space left on device"},
		{"pipe, block completed later", Params{IBS: 512, OBS: 1000, Reblock: true, Count: -1}, [][]byte{make([]byte, 513), make([]byte, 600)}, "writing to '/dev/full': No space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in *os.File
			if tc.pipe == nil {
				in = openRead(t, f513)
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				go func() {
					for _, p := range tc.pipe {
						w.Write(p)
						// The next piece goes in once the copy has read
						// this one (the pipe is empty: FIONREAD, alias
						// TIOCINQ), so it comes in a later read.
						for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
							if n, err := unix.IoctlGetInt(int(w.Fd()), unix.TIOCINQ); err != nil || n == 0 {
								break
							}
						}
					}
					w.Close()
				}()
				in = r
			}
			out, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			err, _ = runCopy(t, tc.p, input(t, in), Output{F: out, Name: "/dev/full"})
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHugeBlockSize: a block size no memory can hold fails with dd's
// message instead of panicking in make or dying out of memory.
func TestHugeBlockSize(t *testing.T) {
	outPath := filepath.Join(t.TempDir(), "out")
	ibs := 1 << 60
	err, _ := runCopy(t, Params{IBS: ibs, OBS: ibs, Count: -1},
		input(t, pipeOf(t, []byte("hi\n"))), Output{F: openWrite(t, outPath, 0), Name: "out"})
	want := "memory exhausted by input buffer of size 1152921504606846976 bytes (1.0 EiB)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestAwkwardBlockSizes: ibs and obs whose common multiples are terabytes
// copy with buffers of about their size (the chunk was once a multiple of
// both, and of the page size: bs=1000001 mapped 24 GiB, ibs=999999
// obs=1000000 died out of memory).
func TestAwkwardBlockSizes(t *testing.T) {
	data := randomBytes(5<<20+17, 5)
	// Zero runs for conv=sparse.
	clear(data[1<<20 : 3<<20])
	clear(data[len(data)-300000:])
	for _, tc := range []struct {
		name  string
		p     Params
		kinds []string
	}{
		{"ibs=999999 obs=1000000", Params{IBS: 999999, OBS: 1000000, Reblock: true, Count: -1}, []string{"file", "pipe"}},
		{"ibs=999999 obs=1000000 sparse", Params{IBS: 999999, OBS: 1000000, Reblock: true, Count: -1, Sparse: true}, []string{"file", "pipe"}},
		{"bs=1000001", Params{IBS: 1000001, OBS: 1000001, Count: -1}, []string{"file", "pipe"}},
		// A pipe's short reads are each padded: only a file's output is
		// known in advance.
		{"bs=1000001 sync", Params{IBS: 1000001, OBS: 1000001, Count: -1, Sync: true}, []string{"file"}},
	} {
		p := tc.p
		for _, kind := range tc.kinds {
			t.Run(tc.name+" "+kind, func(t *testing.T) {
				var in *os.File
				if kind == "file" {
					in = openRead(t, tempFile(t, "in", data))
				} else {
					in = pipeOf(t, data)
				}
				outPath := filepath.Join(t.TempDir(), "out")
				err, stderr := runCopy(t, p, input(t, in), Output{F: openWrite(t, outPath, 0), Name: "out"})
				if err != nil {
					t.Fatalf("copy: %v\n%s", err, stderr)
				}
				want := data
				if p.Sync && len(data)%p.IBS != 0 {
					want = append(append([]byte(nil), data...), make([]byte, p.IBS-len(data)%p.IBS)...)
				}
				if got, _ := os.ReadFile(outPath); !bytes.Equal(got, want) {
					t.Errorf("output is %d bytes, differs from the %d expected", len(got), len(want))
				}
			})
		}
	}
}
