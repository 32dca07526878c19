package pipeio

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/progress"
)

// feed writes data to w in random-sized chunks, then closes w.
func feed(w *os.File, data []byte, rng *rand.Rand) error {
	defer w.Close()
	for len(data) > 0 {
		n := min(1+rng.IntN(300<<10), len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// drain reads r in random-sized reads until EOF.
func drain(r io.Reader, rng *rand.Rand) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 512<<10)
	for {
		n, err := r.Read(buf[:1+rng.IntN(len(buf))])
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

type end int

const (
	pipeEnd end = iota
	fileEnd
	appendFileEnd // O_APPEND: the kernel refuses splice (EINVAL)
	memEnd        // not an *os.File
)

func (e end) String() string {
	return [...]string{"pipe", "file", "append", "mem"}[e]
}

// copyThrough copies data from a src of kind sk to a dst of kind dk with c
// and returns what arrived and Copy's results.
func copyThrough(t *testing.T, c *Copier, sk, dk end, data []byte, rng *rand.Rand) (got []byte, n int64, err error) {
	t.Helper()
	dir := t.TempDir()
	var src io.Reader
	switch sk {
	case pipeEnd:
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go feed(w, data, rand.New(rand.NewPCG(rng.Uint64(), 1)))
		src = r
	case fileEnd:
		p := filepath.Join(dir, "in")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		src = f
	case memEnd:
		src = bytes.NewReader(data)
	}
	type result struct {
		b   []byte
		err error
	}
	var dst io.Writer
	var out chan result
	var outPath string
	var mem bytes.Buffer
	switch dk {
	case pipeEnd:
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		out = make(chan result, 1)
		drng := rand.New(rand.NewPCG(rng.Uint64(), 2))
		go func() { b, err := drain(r, drng); out <- result{b, err} }()
		dst = w
	case fileEnd, appendFileEnd:
		outPath = filepath.Join(dir, "out")
		flags := os.O_CREATE | os.O_WRONLY
		if dk == appendFileEnd {
			flags |= os.O_APPEND
		}
		f, err := os.OpenFile(outPath, flags, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		dst = f
	case memEnd:
		dst = &mem
	}
	n, err = c.Copy(dst, src)
	switch dk {
	case pipeEnd:
		dst.(*os.File).Close()
		r := <-out
		if r.err != nil {
			t.Fatalf("draining the output pipe: %v", r.err)
		}
		got = r.b
	case fileEnd, appendFileEnd:
		b, rerr := os.ReadFile(outPath)
		if rerr != nil {
			t.Fatal(rerr)
		}
		got = b
	case memEnd:
		got = mem.Bytes()
	}
	return got, n, err
}

func TestCopySameBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := []struct{ src, dst end }{
		{pipeEnd, pipeEnd}, {fileEnd, pipeEnd}, {pipeEnd, fileEnd},
		{pipeEnd, appendFileEnd}, {fileEnd, fileEnd}, {memEnd, pipeEnd}, {pipeEnd, memEnd},
	}
	sizes := []int{0, 1, 4095, 1 << 20, 1<<20 + 1, 3<<20 + rng.IntN(1<<20), rng.IntN(5 << 20)}
	for _, p := range pairs {
		for _, noSplice := range []bool{false, true} {
			for _, size := range sizes {
				for _, maxMode := range []string{"all", "less", "more"} {
					data := make([]byte, size)
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					var max int64
					want := data
					switch maxMode {
					case "less":
						if size == 0 {
							continue
						}
						max = int64(rng.IntN(size)) + 1
						want = data[:max]
					case "more":
						max = int64(size) + 1 + int64(rng.IntN(1000))
					}
					name := p.src.String() + "-" + p.dst.String()
					bs := []int{0, 4096, 1 + rng.IntN(2<<20)}[rng.IntN(3)]
					c := &Copier{NoSplice: noSplice, Max: max, BufSize: bs}
					var progressed int64
					c.Progress = func(n int) {
						if n <= 0 {
							t.Errorf("Progress(%d)", n)
						}
						progressed += int64(n)
					}
					got, n, err := copyThrough(t, c, p.src, p.dst, data, rng)
					if err != nil {
						t.Fatalf("%s nosplice=%v size=%d max=%d bs=%d: %v", name, noSplice, size, max, bs, err)
					}
					if sha256.Sum256(got) != sha256.Sum256(want) || n != int64(len(want)) || progressed != n {
						t.Fatalf("%s nosplice=%v size=%d max=%d bs=%d: got %d bytes (Copy says %d, Progress %d), want %d, digests differ=%v",
							name, noSplice, size, max, bs, len(got), n, progressed, len(want), sha256.Sum256(got) != sha256.Sum256(want))
					}
					// splice is used where a pipe is involved, unless
					// disabled or refused (O_APPEND).
					spliceable := !noSplice && p.src != memEnd && p.dst != memEnd &&
						(p.src == pipeEnd || p.dst == pipeEnd) && p.dst != appendFileEnd
					if spliceable && c.Spliced != n || !spliceable && c.Spliced != 0 {
						t.Errorf("%s nosplice=%v size=%d: Spliced = %d of %d", name, noSplice, size, c.Spliced, n)
					}
				}
			}
		}
	}
}

func TestCopyBrokenPipe(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR.Close() // nobody reads
		go func() {
			inW.Write(make([]byte, 1<<16))
			inW.Close()
		}()
		c := &Copier{NoSplice: noSplice}
		_, err = c.Copy(outW, inR)
		inR.Close()
		outW.Close()
		if !errors.Is(err, syscall.EPIPE) {
			t.Errorf("nosplice=%v: Copy to a pipe without reader: %v, want EPIPE", noSplice, err)
		}
	}
}

func TestCopyThrottled(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		// 64 MB/s in grants of at most 32 KiB: 1 MiB takes about 16 ms.
		l := progress.NewLimiter(64e6, 32<<10, 0, time.Now())
		c := &Copier{NoSplice: noSplice, Throttle: l}
		largest := 0
		c.Progress = func(n int) { largest = max(largest, n) }
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		rng := rand.New(rand.NewPCG(3, 4))
		got, _, err := copyThrough(t, c, pipeEnd, pipeEnd, data, rng)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("nosplice=%v: err %v, %d bytes arrived of %d", noSplice, err, len(got), len(data))
		}
		if largest > l.Burst() {
			t.Errorf("nosplice=%v: a chunk of %d bytes, above the limiter's burst %d", noSplice, largest, l.Burst())
		}
	}
}

func TestCopyErrorNamesFile(t *testing.T) {
	d := t.TempDir()
	f, err := os.Open(d) // reading a directory fails with EISDIR
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	_, err = (&Copier{}).Copy(&out, f)
	if want := "read " + d + ": "; err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte(want)) || !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Copy from a directory: %v, want %q... wrapping EISDIR", err, want)
	}
}
