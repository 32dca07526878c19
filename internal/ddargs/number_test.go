package ddargs

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

const overflowText = ": Value too large for defined data type"

var numberCases = []struct {
	in   string
	want int64  // when err == ""
	err  string // "invalid" or "overflow"
}{
	{"0", 0, ""},
	{"1", 1, ""},
	{"08", 8, ""},
	{" \t+12", 12, ""},
	{"1c", 1, ""},
	{"1w", 2, ""},
	{"1b", 512, ""},
	{"b", 512, ""},
	{"k", 1024, ""},
	{"kB", 1000, ""},
	{"1k", 1024, ""},
	{"1K", 1024, ""},
	{"1kB", 1000, ""},
	{"1KB", 1000, ""},
	{"1kD", 1000, ""},
	{"1kiB", 1024, ""},
	{"1KiB", 1024, ""},
	{"1M", 1 << 20, ""},
	{"1MB", 1000000, ""},
	{"1MD", 1000000, ""},
	{"1MiB", 1 << 20, ""},
	{"3G", 3 << 30, ""},
	{"1GB", 1e9, ""},
	{"1T", 1 << 40, ""},
	{"1TB", 1e12, ""},
	{"1P", 1 << 50, ""},
	{"1PB", 1e15, ""},
	{"7E", 7 << 60, ""},
	{"1EB", 1e18, ""},
	{"9EB", 9e18, ""},
	{"1B", 1, ""},
	{"1bB", 512, ""},
	{"1cB", 1, ""},
	{"1wB", 2, ""},
	{"2x3", 6, ""},
	{"2x3b", 3072, ""},
	{"6xb", 3072, ""},
	{"bx2", 1024, ""},
	{"1Bx2", 2, ""},
	{"1x2kB", 2000, ""},
	{"1kBx1", 1000, ""},
	{"1KiBx2", 2048, ""},
	{"1x 2", 2, ""},
	{"1x+2", 2, ""},
	{"0x2", 0, ""},
	{"00x2", 0, ""},
	{"2x0", 0, ""},
	{"0xZ", 0, ""},
	{"1Zx0", 0, ""},
	{"99999999999999999999x0", 0, ""},
	{"0x99999999999999999999", 0, ""},
	{"1Ex7", 7 << 60, ""},
	{"9223372036854775807", math.MaxInt64, ""},
	{"9223372036854775807B", math.MaxInt64, ""},
	{"", 0, "invalid"},
	{"x", 0, "invalid"},
	{"B", 0, "invalid"},
	{"1x", 0, "invalid"},
	{"x2", 0, "invalid"},
	{"1xx2", 0, "invalid"},
	{"2x3x4", 0, "invalid"},
	{"1x-2", 0, "invalid"},
	{"-1", 0, "invalid"},
	{" -1", 0, "invalid"},
	{"-0", 0, "invalid"},
	{"+ 1", 0, "invalid"},
	{"1 ", 0, "invalid"},
	{"1 k", 0, "invalid"},
	{" b", 0, "invalid"},
	{"1.5", 0, "invalid"},
	{"1e3", 0, "invalid"},
	{"1m", 0, "invalid"},
	{"1g", 0, "invalid"},
	{"1t", 0, "invalid"},
	{"1Q", 0, "invalid"},
	{"1R", 0, "invalid"},
	{"1Ki", 0, "invalid"},
	{"1kb", 0, "invalid"},
	{"1gB", 0, "invalid"},
	{"1GIB", 0, "invalid"},
	{"1bD", 0, "invalid"},
	{"1ciB", 0, "invalid"},
	{"1BB", 0, "invalid"},
	{"1kBB", 0, "invalid"},
	{"1KiBB", 0, "invalid"},
	{"1k2", 0, "invalid"},
	{"1b1", 0, "invalid"},
	{"2xB", 0, "invalid"},
	{"1xB", 0, "invalid"},
	{"1x2B", 0, "invalid"},
	{"1Bx2B", 0, "invalid"},
	{"1Bx2kB", 0, "invalid"},
	{"1kBx2kB", 0, "invalid"},
	{"0x", 0, "invalid"},
	{"0xq", 0, "invalid"},
	{"1xYx0", 0, "invalid"},
	{"9223372036854775807q", 0, "invalid"},
	{"9223372036854775808", 0, "overflow"},
	{"18446744073709551615", 0, "overflow"},
	{"18446744073709551616", 0, "overflow"},
	{"99999999999999999999", 0, "overflow"},
	{"99999999999999999999B", 0, "overflow"},
	{"99999999999999999999q", 0, "overflow"},
	{"8E", 0, "overflow"},
	{"1Z", 0, "overflow"},
	{"1Y", 0, "overflow"},
	{"1Y0", 0, "overflow"},
	{"1Zq", 0, "overflow"},
	{"1Ex8", 0, "overflow"},
	{"4294967296x4294967296", 0, "overflow"},
	{"1x99999999999999999999", 0, "overflow"},
	{"99999999999999999999x1", 0, "overflow"},
}

func wantNumberErr(in, kind string) string {
	msg := "invalid number: " + quote(in)
	if kind == "overflow" {
		msg += overflowText
	}
	return msg
}

func TestParseNumber(t *testing.T) {
	for _, tc := range numberCases {
		got, err := ParseNumber(tc.in)
		if tc.err != "" {
			want := wantNumberErr(tc.in, tc.err)
			if err == nil || err.Error() != want || !errors.Is(err, ErrUsage) {
				t.Errorf("ParseNumber(%q) = %d, %v; want error %q", tc.in, got, err, want)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// shmDir returns a directory on a file system that takes files up to
// 8 EiB (tmpfs), where dd's ftruncate can show any number it parsed, or
// "" when there is none.
func shmDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "ddargs")
	if err != nil {
		return ""
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ddNumber asks dd what it makes of n as seek=: "of=F seek=N obs=1"
// truncates F to N bytes. It returns the size, or dd's message.
func ddNumber(tb testing.TB, dir, n string) (int64, string) {
	tb.Helper()
	out := filepath.Join(dir, "seek")
	os.Remove(out)
	r := runDD(tb, dir, "if=/dev/null", "of="+out, "obs=1", "seek="+n, "status=none")
	if r.code != 0 {
		return -1, r.first
	}
	fi, err := os.Stat(out)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size(), ""
}

func TestParseNumberAgainstDD(t *testing.T) {
	needDD(t)
	dir := shmDir(t)
	bigFiles := dir != ""
	if !bigFiles {
		dir = t.TempDir()
	}
	for _, tc := range numberCases {
		if tc.err == "" && tc.want > 1<<40 && !bigFiles {
			t.Logf("seek=%q: not checked, too large for a file outside tmpfs", tc.in)
			continue
		}
		size, msg := ddNumber(t, dir, tc.in)
		switch {
		case tc.err != "":
			if want := wantNumberErr(tc.in, tc.err); msg != want {
				t.Errorf("dd seek=%q: %d %q; want %q", tc.in, size, msg, want)
			}
		case msg != "" || size != tc.want:
			t.Errorf("dd seek=%q: %d %q; want %d", tc.in, size, msg, tc.want)
		}
	}
}

// numberTokens make up the random numbers TestParseNumberRandomAgainstDD
// feeds to both parsers.
var numberTokens = []string{
	"0", "1", "2", "7", "10", "512", "4096", "9223372036854775807", "99999999999999999999",
	"x", "x", "B", "B", "b", "c", "w", "k", "K", "M", "G", "T", "P", "E", "Z", "Y", "Q", "m",
	"i", "iB", "D", " ", "+", "-", "q",
}

func randomNumber(r *rand.Rand) string {
	var b strings.Builder
	for n := 1 + r.IntN(5); n > 0; n-- {
		b.WriteString(numberTokens[r.IntN(len(numberTokens))])
	}
	return b.String()
}

// TestParseNumberRandomAgainstDD compares ParseNumber and the bs= check
// with dd on random strings of number pieces.
func TestParseNumberRandomAgainstDD(t *testing.T) {
	needDD(t)
	dir := shmDir(t)
	if dir == "" {
		testutil.Skip(t, "needs a writable /dev/shm (tmpfs) to read dd's numbers back as file sizes")
	}
	runs := 300
	if testing.Short() {
		runs = 30
	}
	r := rand.New(rand.NewPCG(randomSeed(t, 1), 2))
	for i := 0; i < runs; i++ {
		s := randomNumber(r)
		size, msg := ddNumber(t, dir, s)
		got, err := ParseNumber(s)
		switch {
		case err != nil && err.Error() != msg:
			t.Errorf("seek=%q: ParseNumber error %q, dd %d %q", s, err, size, msg)
		case err == nil && (msg != "" || size != got):
			t.Errorf("seek=%q: ParseNumber %d, dd %d %q", s, got, size, msg)
		}

		// bs= takes 1 to MaxInt64-1; dd allocates the buffer only for a
		// copy, so count=0 makes it exit without one.
		_, _, perr := checkNumber(s, 1, maxBlocksize)
		res := runDD(t, dir, "if=/dev/null", "of=/dev/null", "count=0", "bs="+s)
		switch {
		case perr != nil && (res.code == 0 || res.first != perr.Error()):
			t.Errorf("bs=%q: Parse error %q, dd exit %d %q", s, perr, res.code, res.first)
		case perr == nil && res.code != 0 && !strings.HasPrefix(res.first, "memory exhausted"):
			t.Errorf("bs=%q: Parse ok, dd exit %d %q", s, res.code, res.first)
		}
	}
}

// suffixes and their multipliers, for the round-trip properties.
var suffixMult = []struct {
	s string
	m uint64
}{
	{"", 1}, {"c", 1}, {"B", 1}, {"w", 2}, {"b", 512}, {"bB", 512},
	{"k", 1 << 10}, {"K", 1 << 10}, {"KiB", 1 << 10}, {"kB", 1e3}, {"KD", 1e3},
	{"M", 1 << 20}, {"MiB", 1 << 20}, {"MB", 1e6},
	{"G", 1 << 30}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"T", 1 << 40}, {"TB", 1e12}, {"P", 1 << 50}, {"PB", 1e15},
	{"E", 1 << 60}, {"EB", 1e18},
}

// bigNumber is what ParseNumber must return for a*ma x b*mb, or -1 when
// that does not fit an int64.
func bigNumber(a, ma uint64, b, mb *uint64) int64 {
	p := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(ma))
	if b != nil {
		q := new(big.Int).Mul(new(big.Int).SetUint64(*b), new(big.Int).SetUint64(*mb))
		p.Mul(p, q)
	}
	if !p.IsInt64() {
		return -1
	}
	return p.Int64()
}

// blankPrefixes may come before the digits: strtoumax skips C-locale
// blanks and takes one plus sign.
var blankPrefixes = []string{"", " ", "\t", "+", " +", "\n\v\f\r+"}

// FuzzParseNumber checks ParseNumber against big-integer arithmetic on
// numbers built from decimal digits and known suffixes.
func FuzzParseNumber(f *testing.F) {
	f.Add(uint8(0), uint64(4), uint8(7), false, uint64(0), uint8(0))
	f.Add(uint8(4), uint64(math.MaxInt64), uint8(0), true, uint64(1), uint8(2))
	f.Add(uint8(0), uint64(8), uint8(21), true, uint64(2), uint8(4))
	f.Add(uint8(0), uint64(1), uint8(9), true, uint64(2), uint8(9))
	f.Fuzz(func(t *testing.T, pre uint8, a uint64, sa uint8, product bool, b uint64, sb uint8) {
		x := suffixMult[int(sa)%len(suffixMult)]
		s := blankPrefixes[int(pre)%len(blankPrefixes)] + strconv.FormatUint(a, 10) + x.s
		want := bigNumber(a, x.m, nil, nil)
		invalid := false
		if product {
			y := suffixMult[int(sb)%len(suffixMult)]
			s += "x" + strconv.FormatUint(b, 10) + y.s
			want = bigNumber(a, x.m, &b, &y.m)
			switch {
			case strings.HasSuffix(x.s, "B") && strings.Contains(y.s, "B"):
				// dd refuses a "B" on both sides of the x ("1kBx2kB"),
				// as a number with a bad suffix: what fits is invalid,
				// what does not is too large.
				want = bigNumber(a, x.m, nil, nil)
				invalid = want >= 0
			case y.s == "B" || y.s == "bB":
				// The second factor takes no "B" of its own ("1x2B").
				invalid = true
			}
		}
		got, err := ParseNumber(s)
		switch {
		case invalid:
			if err == nil || err.Error() != "invalid number: "+quote(s) {
				t.Fatalf("ParseNumber(%q) = %d, %v; want invalid", s, got, err)
			}
		case want < 0:
			if err == nil || err.Error() != "invalid number: "+quote(s)+overflowText {
				t.Fatalf("ParseNumber(%q) = %d, %v; want overflow", s, got, err)
			}
		case err != nil || got != want:
			t.Fatalf("ParseNumber(%q) = %d, %v; want %d", s, got, err, want)
		default:
			// Printed back in decimal, the value parses to itself.
			if back, err := ParseNumber(strconv.FormatInt(got, 10)); err != nil || back != got {
				t.Fatalf("ParseNumber(%d) = %d, %v", got, back, err)
			}
		}
	})
}

func FuzzParseNumberString(f *testing.F) {
	for _, tc := range numberCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNumber(s)
		if err != nil {
			want := "invalid number: " + quote(s)
			if msg := err.Error(); msg != want && msg != want+overflowText {
				t.Fatalf("ParseNumber(%q): error %q", s, msg)
			}
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("ParseNumber(%q): %v does not wrap ErrUsage", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseNumber(%q) = %d", s, n)
		}
		// Leading blanks and a plus sign change nothing.
		if s != "" && s[0] >= '0' && s[0] <= '9' {
			if m, err := ParseNumber(" +" + s); err != nil || m != n {
				t.Fatalf("ParseNumber(%q) = %d, %v; ParseNumber(%q) = %d", " +"+s, m, err, s, n)
			}
		}
		// A factor of 1 changes nothing, when dd allows one more x.
		if !strings.Contains(s, "x") && !strings.Contains(s, "B") {
			if m, err := ParseNumber(s + "x1"); err != nil || m != n {
				t.Fatalf("ParseNumber(%q) = %d, %v; ParseNumber(%q) = %d", s+"x1", m, err, s, n)
			}
		}
	})
}

func ExampleParseNumber() {
	for _, s := range []string{"4M", "1MB", "2x512", "1x", "9E"} {
		n, err := ParseNumber(s)
		fmt.Println(n, err)
	}
	// Output:
	// 4194304 <nil>
	// 1000000 <nil>
	// 1024 <nil>
	// 0 invalid number: '1x'
	// 0 invalid number: '9E': Value too large for defined data type
}
