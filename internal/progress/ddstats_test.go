package progress

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n       uint64
		si, iec string
	}{
		{0, "0 B", "0 B"},
		{1, "1 B", "1 B"},
		{999, "999 B", "999 B"},
		{1000, "1.0 kB", "1000 B"},
		{1023, "1.0 kB", "1023 B"},
		{1024, "1.0 kB", "1.0 KiB"},
		{1049, "1.0 kB", "1.0 KiB"},
		{1050, "1.0 kB", "1.0 KiB"}, // 1.05 is a tie: round to even tenths
		{1150, "1.2 kB", "1.1 KiB"},
		{9950, "10 kB", "9.7 KiB"},
		{9999, "10 kB", "9.8 KiB"},
		{10000, "10 kB", "9.8 KiB"},
		{104857600, "105 MB", "100 MiB"},
		{1048576, "1.0 MB", "1.0 MiB"},
		{3145728000, "3.1 GB", "2.9 GiB"},
		{999999, "1.0 MB", "977 KiB"},
	}
	for _, tt := range tests {
		if got := HumanBytes(tt.n, false); got != tt.si {
			t.Errorf("HumanBytes(%d, SI) = %q, want %q", tt.n, got, tt.si)
		}
		if got := HumanBytes(tt.n, true); got != tt.iec {
			t.Errorf("HumanBytes(%d, IEC) = %q, want %q", tt.n, got, tt.iec)
		}
	}
}

func TestHumanRate(t *testing.T) {
	tests := []struct {
		n    uint64
		ns   int64
		want string
	}{
		{3, 1202660000, "0.0 kB/s"},
		{1000, 157940, "6.3 MB/s"},
		{1, 111411, "9.0 kB/s"},
		{104857600, 5634660, "18.6 GB/s"},
		{1048576000, 1e9, "1.0 GB/s"}, // exact: integer path
		{1048576000, 2e9, "524 MB/s"}, // exact: divisor path
		{123456789, 5e8, "247 MB/s"},  // exact: multiplier path
		{500, 1e9, "500 B/s"},         // integer path keeps small numbers
		{5, 0, "Infinity B/s"},
	}
	for _, tt := range tests {
		if got := HumanRate(tt.n, tt.ns); got != tt.want {
			t.Errorf("HumanRate(%d, %d) = %q, want %q", tt.n, tt.ns, got, tt.want)
		}
	}
}

func TestBytesLineForms(t *testing.T) {
	tests := []struct {
		n    int64
		d    time.Duration
		want string
	}{
		{0, 92716 * time.Nanosecond, "0 bytes copied, 9.2716e-05 s, 0.0 kB/s"},
		{1, 111411 * time.Nanosecond, "1 byte copied, 0.000111411 s, 9.0 kB/s"},
		{3, 1202660 * time.Microsecond, "3 bytes copied, 1.20266 s, 0.0 kB/s"},
		{1000, 157940 * time.Nanosecond, "1000 bytes (1.0 kB) copied, 0.00015794 s, 6.3 MB/s"},
		{104857600, 5634660 * time.Nanosecond, "104857600 bytes (105 MB, 100 MiB) copied, 0.00563466 s, 18.6 GB/s"},
	}
	for _, tt := range tests {
		if got := BytesLine(tt.n, tt.d); got != tt.want {
			t.Errorf("BytesLine(%d, %v) =\n %q, want\n %q", tt.n, tt.d, got, tt.want)
		}
	}
}

// TestBytesLineAgainstDD compares the size part of the bytes line with what
// GNU dd prints for the same byte counts.
func TestBytesLineAgainstDD(t *testing.T) {
	testutil.NeedCmd(t, "dd")
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int64{0, 1, 2, 511, 512, 999, 1000, 1023, 1024, 1050, 1051, 1150, 1151, 1536, 9949, 9950, 9999, 10000, 10240, 102400, 999999, 1000000, 1048575, 1048576, 10485760, 99999999}
	for i := 0; i < 40; i++ {
		sizes = append(sizes, rng.Int64N(1<<uint(rng.IntN(33))))
	}
	for _, n := range sizes {
		cmd := exec.Command("dd", "if=/dev/zero", "of=/dev/null", "iflag=count_bytes", fmt.Sprintf("count=%d", n), "bs=64M")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("dd: %v: %s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		ddLine := lines[len(lines)-1]
		want, _, _ := strings.Cut(ddLine, " copied,")
		got, _, _ := strings.Cut(BytesLine(n, time.Second), " copied,")
		if got != want {
			t.Errorf("%d bytes: got %q, dd says %q", n, got, want)
		}
	}
}

func TestReport(t *testing.T) {
	var buf bytes.Buffer
	d := NewDD(&buf, "blkcat", LevelDefault)
	start := d.Start
	d.C.InFull.Store(3)
	d.C.InPartial.Store(1)
	d.C.OutFull.Store(2)
	d.C.OutPartial.Store(1)
	d.C.Bytes.Store(1600)
	d.Report(start.Add(2 * time.Second))
	want := "3+1 records in\n2+1 records out\n1600 bytes (1.6 kB, 1.6 KiB) copied, 2 s, 800 B/s\n"
	if buf.String() != want {
		t.Errorf("Report =\n%q, want\n%q", buf.String(), want)
	}

	buf.Reset()
	d.Level = LevelNoxfer
	d.C.Truncated.Store(1)
	d.Report(start.Add(time.Second))
	want = "3+1 records in\n2+1 records out\n1 truncated record\n"
	if buf.String() != want {
		t.Errorf("noxfer Report = %q, want %q", buf.String(), want)
	}

	buf.Reset()
	d.Level = LevelNone
	d.Report(start)
	if buf.Len() != 0 {
		t.Errorf("status=none printed %q", buf.String())
	}
}

func TestProgressRedraw(t *testing.T) {
	var buf bytes.Buffer
	d := NewDD(&buf, "blkwrite", LevelProgress)
	start := d.Start
	d.Tick(start.Add(500 * time.Millisecond)) // not due yet
	if buf.Len() != 0 {
		t.Fatalf("progress before 1 s: %q", buf.String())
	}
	d.C.Bytes.Store(2_000_000)
	d.Tick(start.Add(time.Second))
	d.C.Bytes.Store(5)
	d.Tick(start.Add(2 * time.Second))
	d.Diagnose("warning: something")
	d.Report(start.Add(2 * time.Second))
	first := "2000000 bytes (2.0 MB, 1.9 MiB) copied, 1 s, 2.0 MB/s"
	second := "5 bytes copied, 2 s, 2 B/s"
	pad := strings.Repeat(" ", len(first)-len(second))
	want := "\r" + first + "\r" + second + pad + "\nblkwrite: warning: something\n" +
		"0+0 records in\n0+0 records out\n5 bytes copied, 2 s, 2 B/s\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

// TestNote: notes are informational; status=none (and -q) drops them, as
// dd's status=none prints no informational messages. Diagnose always prints.
func TestNote(t *testing.T) {
	for _, tc := range []struct {
		level Level
		want  string
	}{
		{LevelDefault, "blkwrite: note: tail kept\nblkwrite: failed\n"},
		{LevelNoxfer, "blkwrite: note: tail kept\nblkwrite: failed\n"},
		{LevelNone, "blkwrite: failed\n"},
	} {
		var buf bytes.Buffer
		d := NewDD(&buf, "blkwrite", tc.level)
		d.Note("tail kept")
		d.Diagnose("failed")
		if buf.String() != tc.want {
			t.Errorf("level %d: %q, want %q", tc.level, buf.String(), tc.want)
		}
	}
}
