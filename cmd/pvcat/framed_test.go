package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// framedSource is a source that compresses to about a third: random
// bytes, zeros and text.
func framedSource(n int) []byte {
	data := randomData(rand.New(rand.NewPCG(5, 6)), n/3)
	data = append(data, make([]byte, n/3)...)
	return append(data, bytes.Repeat([]byte("blkpipe\n"), (n-len(data))/8)...)
}

// frameIt frames data with lz4, a 64 KiB block size and opts.
func frameIt(t *testing.T, data []byte, opts ...frame.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := frame.NewWriter(&buf, append([]frame.WriterOption{frame.WithCodec(frame.CodecLZ4, 0), frame.WithBlockSize(64 << 10)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRunFramed checks that pvcat counts a framed stream in source bytes,
// takes its size from the header, and passes it on unchanged; --wire and
// -S count the wire, and a stream that goes wrong is counted on in wire
// bytes from where the Observer stopped.
func TestRunFramed(t *testing.T) {
	data := framedSource(600 << 10)
	n := strconv.Itoa(len(data))
	sized := frameIt(t, data, frame.WithSourceSize(int64(len(data))))
	unsized := frameIt(t, data)
	wire := strconv.Itoa(len(sized))
	if len(sized) > len(data)/2 {
		t.Fatalf("the stream is %d bytes for %d: not compressed enough to tell", len(sized), len(data))
	}
	// The Observer checks record headers, not payloads: damage the
	// second record's offset.
	damaged := bytes.Clone(sized)
	second := frame.HeaderLen + frame.RecordHeaderLen + int(binary.LittleEndian.Uint32(sized[frame.HeaderLen+4:]))
	damaged[second+9] ^= 1
	file := filepath.Join(t.TempDir(), "img.blkp")
	if err := os.WriteFile(file, sized, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		in     []byte
		stderr string // a regular expression
	}{
		{"source bytes", []string{"-nb"}, sized, `^` + n + `\n$`},
		{"size from the header", []string{"-n"}, sized, `^100\n$`},
		{"size from -s", []string{"-n", "-s", n}, unsized, `^100\n$`},
		{"-s over the header", []string{"-n", "-s", strconv.Itoa(2 * len(data))}, sized, `^50\n$`},
		{"wire", []string{"-nb", "--wire"}, sized, `^` + wire + `\n$`},
		{"wire percentage", []string{"-n", "--wire", "-s", n}, sized, `^` + strconv.Itoa(len(sized)*100/len(data)) + `\n$`},
		{"stop at size counts the wire", []string{"-nb", "-S", "-s", wire}, sized, `^` + wire + `\n$`},
		{"json", []string{"--json"}, sized, `^\{"ts":"[^"]+","elapsed":[0-9.]+,"bytes":` + n + `,.*"size":` + n + `,"percent":100,"eta":0,"done":true\}\n$`},
		{"bytes after END", []string{"-nb"}, append(bytes.Clone(sized), "junk"...), `^` + strconv.Itoa(len(data)+4) + `\n$`},
		{"two streams", []string{"-nb"}, append(bytes.Clone(sized), sized...), `^` + strconv.Itoa(len(data)+len(sized)) + `\n$`},
		// No header: no source byte yet.
		{"magic only", []string{"-nb"}, []byte(frame.Magic), `^0\n$`},
		{"half the magic", []string{"-nb"}, []byte(frame.Magic[:4] + "raw data"), `^12\n$`},
		{"FILE operand", []string{"-n", file}, nil, `^100\n$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, bytes.NewReader(tc.in), &out, &errb, nil)
			want := tc.in
			if want == nil {
				want = sized
			}
			if err != nil || !bytes.Equal(out.Bytes(), want) || !regexp.MustCompile(tc.stderr).MatchString(errb.String()) {
				t.Fatalf("run %v: %v, %d bytes out of %d (same: %v), stderr %q; want %s",
					tc.args, err, out.Len(), len(want), bytes.Equal(out.Bytes(), want), errb.String(), tc.stderr)
			}
		})
	}
	// Damaged: the count stops at the damage in source bytes (one
	// block of 64 KiB) and goes on in wire bytes.
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-nb"}, bytes.NewReader(damaged), &out, &errb, nil); err != nil || !bytes.Equal(out.Bytes(), damaged) {
		t.Fatalf("damaged: %v, %d bytes out", err, out.Len())
	}
	if want := 64<<10 + len(damaged) - second - frame.RecordHeaderLen; errb.String() != strconv.Itoa(want)+"\n" {
		t.Fatalf("damaged: counted %q, want %d", errb.String(), want)
	}
}

// TestRunNotFramedAtOnce checks that input which is not a framed stream
// goes on at once, before 8 bytes have come (a terminal, tail -f): pvcat
// waits for more only while the bytes still match the magic.
func TestRunNotFramedAtOnce(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-q"}, inR, outW, io.Discard, nil)
		outW.Close()
	}()
	inW.WriteString("hi\n")
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 3)
		n, _ := io.ReadFull(outR, b)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		if s != "hi\n" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("3 bytes of raw input not passed on in 10 s")
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	inR.Close()
}

// TestFramedPipeline is the issue's case: `blkcat -z lz4 IMG | pvcat -s
// @IMG` ends at 100 %, not at the 25 % of the compressed bytes, and the
// stream comes out of pvcat whole: a frame.Reader verifies it.
func TestFramedPipeline(t *testing.T) {
	blkcat := testutil.Tool(t, "blkcat")
	data := framedSource(8 << 20)
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // pvcat's stderr, a regular expression
	}{
		{[]string{"-n", "-s", "@" + img}, `^100\n$`},
		{[]string{"-n"}, `^100\n$`},
		{[]string{"-nb", "-C"}, `^` + strconv.Itoa(len(data)) + `\n$`},
		{[]string{"-n", "--wire", "-s", "@" + img}, `^[1-9]?[0-9]\n$`}, // below 100: compressed
	} {
		src := exec.Command(blkcat, "-q", "-z", "lz4", img)
		pipe, err := src.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var srcErr bytes.Buffer
		src.Stderr = &srcErr
		if err := src.Start(); err != nil {
			t.Fatal(err)
		}
		got := runPvcat(t, pipe.(*os.File), tc.args...)
		if err := src.Wait(); err != nil {
			t.Fatalf("blkcat: %v, %s", err, srcErr.String())
		}
		if got.code != 0 || !regexp.MustCompile(tc.want).MatchString(got.stderr) {
			t.Fatalf("blkcat -z lz4 IMG | pvcat %v: exit %d, stderr %q; want %s", tc.args, got.code, got.stderr, tc.want)
		}
		r, err := frame.NewReader(bytes.NewReader(got.stdout))
		if err != nil {
			t.Fatal(err)
		}
		var back []byte
		for {
			rec, err := r.Next()
			if err != nil {
				t.Fatalf("pvcat %v: the stream out: %v", tc.args, err)
			}
			if rec.Type == frame.End {
				if !rec.Verified {
					t.Fatalf("pvcat %v: END not verified", tc.args)
				}
				break
			}
			if rec.Type == frame.Zero {
				back = append(back, make([]byte, rec.Length)...)
			} else {
				back = append(back, rec.Data...)
			}
		}
		r.Close()
		if !bytes.Equal(back, data) {
			t.Fatalf("pvcat %v: the stream decodes to %d other bytes", tc.args, len(back))
		}
	}
}
