package ddargs

import (
	"math"
	"math/bits"
	"strings"
)

// strtolError mirrors gnulib's strtol_error: a bit set, so an invalid
// suffix can come together with an overflow.
type strtolError int

const (
	longintOK            strtolError = 0
	longintOverflow      strtolError = 1
	longintInvalidSuffix strtolError = 2
	longintInvalid       strtolError = 4
)

// ddSuffixes are the suffix letters coreutils 9.1 dd passes to xstrtoumax.
// '0' is gnulib's flag allowing a second suffix "B"/"D" (powers of 1000) or
// "iB" (powers of 1024) after a power letter. Q and R (quetta, ronna) came
// in a later gnulib: dd 9.1 rejects "1Q" as an invalid number.
const ddSuffixes = "bcEGkKMPTwYZ0"

// isCSpace reports whether c is isspace() in the C locale, which strtoumax
// skips before the digits.
func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// scale multiplies *x by f, saturating at MaxUint64 as gnulib's bkm_scale.
func scale(x *uint64, f uint64) strtolError {
	if math.MaxUint64/f < *x {
		*x = math.MaxUint64
		return longintOverflow
	}
	*x *= f
	return longintOK
}

func scalePower(x *uint64, base uint64, power int) strtolError {
	var e strtolError
	for ; power > 0; power-- {
		e |= scale(x, base)
	}
	return e
}

// xstrtoumax is gnulib's xstrtoumax(s, &rest, 10, &val, ddSuffixes): it
// returns the value (saturated on overflow), the unparsed rest of s (only
// meaningful with longintInvalidSuffix) and the error bits. On
// longintInvalid the value is 0, the "indeterminate" dd initialises it to.
func xstrtoumax(s string) (uint64, string, strtolError) {
	// Unsigned strtol would accept "-1" as a huge number: refuse it.
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '-' {
		return 0, s, longintInvalid
	}

	// strtoumax, base 10.
	if i < len(s) && s[i] == '+' {
		i++
	}
	start := i
	var tmp uint64
	var e strtolError
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if e == longintOK {
			hi, lo := bits.Mul64(tmp, 10)
			sum, carry := bits.Add64(lo, uint64(s[i]-'0'), 0)
			if hi != 0 || carry != 0 {
				tmp, e = math.MaxUint64, longintOverflow // ERANGE
			} else {
				tmp = sum
			}
		}
	}
	rest := s[i:]
	if i == start {
		// No digits: strtoumax leaves the end pointer at the very start,
		// and a lone valid suffix means 1 ("b" is 512).
		rest = s
		if rest != "" && strings.IndexByte(ddSuffixes, rest[0]) >= 0 {
			tmp = 1
		} else {
			return 0, s, longintInvalid
		}
	}
	if rest == "" {
		return tmp, rest, e
	}
	if strings.IndexByte(ddSuffixes, rest[0]) < 0 {
		return tmp, rest, e | longintInvalidSuffix
	}

	base := uint64(1024)
	n := 1
	switch rest[0] {
	case 'E', 'G', 'g', 'k', 'K', 'M', 'm', 'P', 'Q', 'R', 'T', 't', 'Y', 'Z':
		// ddSuffixes holds '0', so a second suffix is allowed.
		if len(rest) > 1 {
			switch rest[1] {
			case 'i':
				if len(rest) > 2 && rest[2] == 'B' {
					n += 2
				}
			case 'B', 'D': // 'D' is obsolescent
				base = 1000
				n++
			}
		}
	}
	var overflow strtolError
	switch rest[0] {
	case 'b':
		overflow = scale(&tmp, 512)
	case 'c':
	case 'w':
		overflow = scale(&tmp, 2)
	case 'k', 'K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y':
		// K is base to the power 1, M to 2, and so on to Y, 8; k is K.
		power := strings.IndexByte("KMGTPEZY", rest[0]) + 1
		if rest[0] == 'k' {
			power = 1
		}
		overflow = scalePower(&tmp, base, power)
	default: // the '0' flag itself
		return tmp, rest, e | longintInvalidSuffix
	}
	e |= overflow
	rest = rest[n:]
	if rest != "" {
		e |= longintInvalidSuffix
	}
	return tmp, rest, e
}

// parseInteger is dd 9.1's parse_integer: one number with a suffix, an
// optional trailing "B" (bytes, "1B" = 1, "2bB" = 1024), and at most one
// "x" product ("2x3b"; "2x3x4" is invalid in 9.1). It returns the value
// (MaxInt64 on overflow, 0 when invalid), the error bits, and whether dd
// warns that a leading "0x" is a zero multiplier.
func parseInteger(str string) (int64, strtolError, bool) {
	n, suffix, e := xstrtoumax(str)
	// prev is the byte before suffix (suffix[-1] in dd.c), 0 at the start.
	prev := func() byte {
		if len(suffix) >= len(str) {
			return 0
		}
		return str[len(str)-len(suffix)-1]
	}

	if e&^longintOverflow == longintInvalidSuffix && suffix != "" &&
		suffix[0] == 'B' && len(suffix) < len(str) && prev() != 'B' {
		suffix = suffix[1:]
		if suffix == "" {
			e &^= longintInvalidSuffix
		}
	}

	if e&^longintOverflow == longintInvalidSuffix && suffix != "" && suffix[0] == 'x' &&
		!(prev() == 'B' && strings.IndexByte(suffix[1:], 'B') >= 0) {
		o, _, f := xstrtoumax(suffix[1:])
		if f&^longintOverflow != longintOK {
			return 0, f, false
		}
		hi, lo := bits.Mul64(n, o)
		if hi != 0 || lo > math.MaxInt64 || (lo != 0 && (e|f)&longintOverflow != 0) {
			return math.MaxInt64, longintOverflow, false
		}
		return int64(lo), longintOK, lo == 0 && strings.HasPrefix(str, "0x")
	}
	if n <= math.MaxInt64 {
		return int64(n), e, false
	}
	return math.MaxInt64, longintOverflow, false
}

// numberError builds dd's "invalid number" message for val. An overflow
// gets strerror(EOVERFLOW) appended, as dd passes that errno to die().
func numberError(val string, e strtolError) error {
	msg := "invalid number: " + quote(val)
	if e == longintOverflow {
		msg += ": Value too large for defined data type"
	}
	return usageErr(msg)
}

// checkNumber parses val as dd does for an operand accepting [min, max].
func checkNumber(val string, min, max int64) (int64, bool, error) {
	n, e, warn := parseInteger(val)
	if n < min {
		e = longintInvalid
	} else if n > max {
		e = longintOverflow
	}
	if e != longintOK {
		return 0, warn, numberError(val, e)
	}
	return n, warn, nil
}

// ParseNumber parses a number as GNU dd 9.1 does for count=, skip= and
// seek=: decimal digits (after optional C-locale blanks and "+"), an
// optional multiplicative suffix, an optional "B", and at most one "x"
// product of two such numbers.
//
// Suffixes: c=1, w=2, b=512, B=1 (after digits or another suffix: "1bB" is
// 512); K, k, KiB, kiB = 1024 and kB, KB, kD, KD = 1000; likewise M, G, T,
// P, E, Z, Y for powers of 1024 (plain or with "iB") and of 1000 (with "B"
// or "D"). A suffix alone counts as one of it ("b" is 512). Lower-case m,
// g, t and the Q and R suffixes are not accepted by dd 9.1.
//
// The result lies in [0, MaxInt64]. Errors wrap ErrUsage and read as dd's:
// "invalid number: '1x'", or with ": Value too large for defined data
// type" appended on overflow. ParseNumber does not report dd's warning
// about a "0x" prefix (zero multiplier); Parse does, in Operands.Warnings.
func ParseNumber(s string) (int64, error) {
	n, _, err := checkNumber(s, 0, math.MaxInt64)
	return n, err
}
