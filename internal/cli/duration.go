package cli

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

var errDuration = errors.New("want seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d12h)")

// ParseDuration parses the durations every tool's options take: plain
// seconds ("2", "0.5", ".5"), Go's durations ("250ms", "5m", "1h30m") and
// days ahead of them ("1d", "7d", "1d12h", "1.5d"), a day being 24 hours.
// Negative durations and those beyond time.Duration's range (about 292
// years) are errors.
func ParseDuration(s string) (time.Duration, error) {
	if isDecimal(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f*float64(time.Second) >= math.MaxInt64 {
			return 0, errDuration
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 && isDecimal(s[:i]) {
		f, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || f*24*float64(time.Hour) >= math.MaxInt64 {
			return 0, errDuration
		}
		days, s = time.Duration(f*24*float64(time.Hour)), s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, errDuration
	}
	d, err := time.ParseDuration(s)
	if err != nil || d > math.MaxInt64-days {
		return 0, errDuration
	}
	return days + d, nil
}

// isDecimal reports whether s is digits with at most one '.' among them.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
