package cli

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseDuration: any string gives a non-negative duration or an error,
// never a panic.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"2", "0.5", "5m", "1h30m", "1d", "1d12h", "1.5d", "-1", "1e3", "d", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Errorf("ParseDuration(%q) = %v", s, d)
		}
	})
}

// FuzzParse: any command line (words split on blanks) gives operands or
// one of Parse's documented errors, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-qzlz4 x", "--stall=5m -- -q", "-F%b", "-json", "- -", "--", "-z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var log []string
		_, err := testParser(&log, false).Parse(strings.Fields(s))
		if err != nil && !errors.Is(err, ErrUsage) && err != ErrHelp && err != ErrVersion {
			t.Errorf("Parse(%q): unexpected error %v", s, err)
		}
	})
}
