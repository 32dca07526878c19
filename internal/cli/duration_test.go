package cli

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"2", 2 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{".5", 500 * time.Millisecond},
		{"300", 5 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"5m", 5 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"0s", 0},
		{"1d", 24 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"2d30m", 48*time.Hour + 30*time.Minute},
	}
	for _, tt := range good {
		if got, err := ParseDuration(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"", " 2", "2 ", "-1", "-5m", "+5m", "1.2.3", ".", "x", "5x", "d", "1dd", "1d-1h", "1d 2h", "5m1d",
		"1e3", "0x10", "NaN", "inf", "1e400", "99999999999", "200000d", "106751d23h47m16s854775808ns",
	} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}
