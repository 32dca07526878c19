package ddcopy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// chunkReader returns its chunks one read each, as a pipe written in
// those pieces does.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if n < len(r.chunks[0]) {
		r.chunks[0] = r.chunks[0][n:]
	} else {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// limitWriter fails once n bytes were written.
type limitWriter struct {
	buf bytes.Buffer
	n   int
}

var errFull = errors.New("full")

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.n {
		k := w.n - w.buf.Len()
		w.buf.Write(p[:k])
		return k, errFull
	}
	return w.buf.Write(p)
}

// textParams parses dd operands as the tools do.
func textParams(tb testing.TB, args ...string) Params {
	tb.Helper()
	o, err := ddargs.Parse(args)
	if err != nil {
		tb.Fatal(err)
	}
	p := Params{IBS: int(o.IBS), OBS: int(o.OBS), Reblock: true, Count: -1, Sync: o.Conv.Sync, Text: o.Text}
	if o.Count >= 0 {
		p.Count, p.CountTail = o.CountSplit()
	}
	return p
}

// The expected outputs and records lines are dd 9.1's for the same input
// written in the same pieces (TestDifferentialDDHabits runs dd itself).
func TestRunText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		chunks []string
		want   string
		stats  string // the records lines
	}{
		{"ucase", []string{"conv=ucase"}, []string{"Hello, World\n"}, "HELLO, WORLD\n", "0+1 records in\n0+1 records out\n"},
		{"lcase bs", []string{"conv=lcase", "bs=4"}, []string{"ABCDEFGHIJ"}, "abcdefghij", "2+1 records in\n2+1 records out\n"},
		{"swab carries the odd byte across reads", []string{"conv=swab", "bs=16"}, []string{"abc", "defg", "h"}, "badcfehg", "0+3 records in\n0+1 records out\n"},
		{"swab keeps a last odd byte", []string{"conv=swab"}, []string{"abcde"}, "badce", "0+1 records in\n0+1 records out\n"},
		{"swab reblocks", []string{"conv=swab", "ibs=3", "obs=2"}, []string{"abcdefg"}, "badcfeg", "2+1 records in\n3+1 records out\n"},
		{"block pads and truncates", []string{"conv=block", "cbs=4"}, []string{"ab\ncdefgh\n\nx"}, "ab  cdef    x   ", "0+1 records in\n0+1 records out\n1 truncated record\n"},
		{"unblock", []string{"conv=unblock", "cbs=4"}, []string{"ab  cd e    x"}, "ab\ncd e\n\nx\n", "0+1 records in\n0+1 records out\n"},
		{"sync pads spaces with block", []string{"conv=block,sync", "cbs=3", "ibs=4"}, []string{"a\nb", "c"}, "a  b c", "0+2 records in\n0+1 records out\n1 truncated record\n"},
		{"sync pads zeros", []string{"conv=ucase,sync", "bs=4"}, []string{"ab"}, "AB\x00\x00", "0+1 records in\n1+0 records out\n"},
		{"ebcdic", []string{"conv=ebcdic"}, []string{"A1 \n"}, "\xc1\xf1\x40\x25", "0+1 records in\n0+1 records out\n"},
		{"ebcdic blocks with EBCDIC spaces", []string{"conv=ebcdic", "cbs=3"}, []string{"a\n"}, "\x81\x40\x40", "0+1 records in\n0+1 records out\n"},
		{"ascii unblocks EBCDIC", []string{"conv=ascii", "cbs=2"}, []string{"\xc1\x40\xc2\xc3"}, "A\nBC\n", "0+1 records in\n0+1 records out\n"},
		{"count", []string{"conv=ucase", "bs=2", "count=2"}, []string{"abcdef"}, "ABCD", "2+0 records in\n2+0 records out\n"},
		{"count bytes", []string{"conv=ucase", "bs=4", "iflag=count_bytes", "count=6"}, []string{"abcdefgh"}, "ABCDEF", "1+1 records in\n1+1 records out\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			c := &Copier{
				P:    textParams(t, tc.args...),
				In:   Input{F: os.Stdin, R: &chunkReader{chunks: append([]string(nil), tc.chunks...)}, Name: "standard input", Size: -1},
				Out:  Output{Name: "standard output"},
				Sink: &out,
				R:    progress.NewDD(&stderr, "blkcat", progress.LevelNoxfer),
			}
			if err := c.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.R.Report(c.R.Start)
			if out.String() != tc.want || stderr.String() != tc.stats {
				t.Errorf("got %q and\n%s; want %q and\n%s", out.String(), stderr.String(), tc.want, tc.stats)
			}
		})
	}
}

// TestRunTextWriteError: a full obs block that fails is dd's "writing to",
// the last short one "error writing"; nothing is written after the error.
func TestRunTextWriteError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		want  string
		stats string
	}{
		{"full block", 3, "writing to 'standard output': full", "2+0 records in\n0+0 records out\n"},
		{"last block", 8, "error writing 'standard output': full", "5+0 records in\n2+0 records out\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &limitWriter{n: tc.limit}
			var stderr bytes.Buffer
			c := &Copier{
				P:    textParams(t, "conv=ucase", "ibs=2", "obs=4"),
				In:   Input{F: os.Stdin, R: &chunkReader{chunks: []string{"abcdefghij"}}, Name: "standard input", Size: -1},
				Out:  Output{Name: "standard output"},
				Sink: w,
				R:    progress.NewDD(&stderr, "blkcat", progress.LevelNoxfer),
			}
			err := c.Run(context.Background())
			if err == nil || err.Error() != tc.want || !errors.Is(err, errFull) {
				t.Fatalf("Run() = %v, want %q", err, tc.want)
			}
			c.R.Report(c.R.Start)
			if w.buf.Len() != tc.limit || stderr.String() != tc.stats {
				t.Errorf("wrote %d bytes, stats\n%s; want %d and\n%s", w.buf.Len(), stderr.String(), tc.limit, tc.stats)
			}
		})
	}
}

// FuzzRunText runs the conversion loop on random input, pieces and
// operands: it must not fail or panic, conversions that neither block,
// unblock nor pad keep the length, and swab twice gives the input back.
func FuzzRunText(f *testing.F) {
	f.Add([]byte("Hello\nWorld  \n"), uint8(3), uint8(5), uint8(4), uint16(0x0f))
	f.Add([]byte("abc"), uint8(1), uint8(1), uint8(1), uint16(0x1ff))
	convs := []string{"ucase", "lcase", "swab", "ascii", "ebcdic", "ibm", "block", "unblock", "sync"}
	f.Fuzz(func(t *testing.T, data []byte, ibs, obs, cbs uint8, mask uint16) {
		args := []string{"ibs=" + itoa(int(ibs)%64+1), "obs=" + itoa(int(obs)%64+1), "cbs=" + itoa(int(cbs)%16+1)}
		var list []string
		for i, c := range convs {
			if mask&(1<<i) != 0 {
				list = append(list, c)
			}
		}
		if len(list) == 0 {
			list = []string{"swab"}
		}
		o, err := ddargs.Parse(append(args, "conv="+strings.Join(list, ",")))
		if err != nil {
			return // a conflict dd refuses too
		}
		// Pieces of the input as a pipe might deliver them.
		var chunks []string
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(rest[0])%7+1)
			chunks = append(chunks, string(rest[:n]))
			rest = rest[n:]
		}
		run := func(chunks []string, p Params) []byte {
			var out bytes.Buffer
			c := &Copier{P: p, In: Input{F: os.Stdin, R: &chunkReader{chunks: chunks}, Name: "standard input", Size: -1},
				Out: Output{Name: "standard output"}, Sink: &out, R: progress.NewDD(io.Discard, "blkcat", progress.LevelNone)}
			if err := c.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		}
		p := Params{IBS: int(o.IBS), OBS: int(o.OBS), Reblock: true, Count: -1, Sync: o.Conv.Sync, Text: o.Text}
		out := run(chunks, p)
		if !o.Text.Block && !o.Text.Unblock && !o.Conv.Sync && len(out) != len(data) {
			t.Fatalf("%v: %d bytes in, %d out", list, len(data), len(out))
		}
		if o.Text.Swab && !o.Text.Translates() && !o.Text.Block && !o.Text.Unblock && !o.Conv.Sync {
			if back := run([]string{string(out)}, p); !bytes.Equal(back, data) {
				t.Fatalf("swab twice: %q, want %q", back, data)
			}
		}
	})
}
