package frame

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// maxRSS is the memory budget of each side of blkcat | blkwrite at
// default settings.
const maxRSS = 64 << 20

// TestMemoryBound pipes a Writer child process into a Reader child
// process, as blkcat | blkwrite do, moving 512 MiB at default settings
// with GOMAXPROCS=8 (the largest default concurrency), and checks each
// side's peak RSS (VmHWM) against the budget.
func TestMemoryBound(t *testing.T) {
	testutil.NeedLong(t, "moves 512 MiB")
	for _, codec := range []string{"none", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			child := func(mode string) *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$")
				cmd.Env = append(os.Environ(), "FRAME_MEMORY_CHILD="+mode+","+codec, "GOMAXPROCS=8")
				return cmd
			}
			enc, dec := child("encode"), child("decode")
			var encErr, decErr bytes.Buffer
			enc.Stdout, enc.Stderr = &encErr, &encErr
			dec.Stdout, dec.Stderr = &decErr, &decErr
			// The stream goes through fd 3: the test framework prints on
			// stdout.
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			enc.ExtraFiles, dec.Stdin = []*os.File{pw}, pr
			if err := enc.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			defer pr.Close()
			if err := dec.Run(); err != nil {
				t.Fatalf("decoder: %v\n%s", err, decErr.String())
			}
			if err := enc.Wait(); err != nil {
				t.Fatalf("encoder: %v\n%s", err, encErr.String())
			}
			for _, side := range []struct {
				name string
				out  string
			}{{"writer", encErr.String()}, {"reader", decErr.String()}} {
				_, after, ok := strings.Cut(side.out, "VmHWM:")
				if !ok {
					t.Fatalf("%s printed no VmHWM:\n%s", side.name, side.out)
				}
				kb, err := strconv.ParseInt(strings.Fields(after)[0], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s %s: peak RSS %d KiB", codec, side.name, kb)
				if kb<<10 > maxRSS {
					t.Errorf("%s %s: peak RSS %d KiB > %d KiB", codec, side.name, kb, maxRSS>>10)
				}
			}
		})
	}
}

// TestMemoryChild is one side of TestMemoryBound: it frames 512 MiB to
// fd 3, or reads a stream from stdin, then prints its VmHWM to stderr.
func TestMemoryChild(t *testing.T) {
	mode, name, ok := strings.Cut(os.Getenv("FRAME_MEMORY_CHILD"), ",")
	if !ok {
		t.Skip("run by TestMemoryBound")
	}
	codec, level, err := ParseCodec(name)
	if err != nil {
		t.Fatal(err)
	}
	const total = 512 << 20
	if mode == "encode" {
		pattern := mixed(4 << 20)
		out := os.NewFile(3, "stream")
		defer out.Close()
		w, err := NewWriter(out, WithCodec(codec, level), WithSourceSize(total))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < total; n += 1 << 20 {
			off := (n / 3) % (len(pattern) - 1<<20) // shift, so blocks differ
			if _, err := w.Write(pattern[off : off+1<<20]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out.Close()
	} else {
		r, err := NewReader(os.Stdin)
		if err != nil {
			t.Fatal(err)
		}
		var end Record
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			end = rec
		}
		if !end.Verified || end.Offset != total {
			t.Fatalf("END %+v", end)
		}
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "VmHWM:") {
			fmt.Fprintln(os.Stderr, s.Text())
		}
	}
}
