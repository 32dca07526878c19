package progress

import (
	"math/bits"
	"strconv"
)

// powerLetter holds gnulib's SI prefixes by exponent (human.c).
const powerLetter = "\x00KMGTPEZYRQ"

// humanSuffix appends " B", " kB", " MiB"... as gnulib's human_readable does
// with human_SI|human_B|human_space_before_unit.
func humanSuffix(dst []byte, exponent int, base1024 bool) []byte {
	dst = append(dst, ' ')
	if exponent > 0 {
		if !base1024 && exponent == 1 {
			dst = append(dst, 'k')
		} else {
			dst = append(dst, powerLetter[exponent])
		}
		if base1024 {
			dst = append(dst, 'i')
		}
	}
	return append(dst, 'B')
}

// HumanBytes formats n bytes the way GNU dd does in its transfer line
// (gnulib human_readable with autoscale, round to nearest, SI prefixes and a
// space before the unit): "512 B", "1.0 kB", "105 MB"; with base1024 "1.0 KiB",
// "100 MiB". It is exact integer arithmetic, as gnulib's integer path is.
func HumanBytes(n uint64, base1024 bool) string {
	return string(humanInt(nil, n, 0, 0, base1024))
}

// humanInt is gnulib's use_integer_arithmetic path: amt.tenths with the
// rounding state (0 exact, 1 below half, 2 half, 3 above half).
func humanInt(dst []byte, amt uint64, tenths, rounding int, base1024 bool) []byte {
	base := uint64(1000)
	if base1024 {
		base = 1024
	}
	exponentMax := len(powerLetter) - 1
	exponent := 0
	point := -1 // the tenths digit to print after the integer, or -1
	if base <= amt {
		for {
			r10 := (amt%base)*10 + uint64(tenths)
			r2 := (r10%base)*2 + uint64(rounding>>1)
			amt /= base
			tenths = int(r10 / base)
			switch {
			case r2 < base && r2+uint64(rounding) != 0:
				rounding = 1
			case r2 < base:
				rounding = 0
			case base < r2+uint64(rounding):
				rounding = 3
			default:
				rounding = 2
			}
			exponent++
			if !(base <= amt && exponent < exponentMax) {
				break
			}
		}
		if amt < 10 {
			if 2 < rounding+(tenths&1) {
				tenths++
				rounding = 0
				if tenths == 10 {
					amt++
					tenths = 0
				}
			}
			if amt < 10 {
				point = tenths
				tenths, rounding = 0, 0
			}
		}
	}
	odd := 0
	if amt&1 == 1 {
		odd = 1
	}
	carry := 0
	if 0 < rounding+odd {
		carry = 1
	}
	if 5 < tenths+carry {
		amt++
		if amt == base && exponent < exponentMax {
			exponent++
			point = 0
			amt = 1
		}
	}
	dst = strconv.AppendUint(dst, amt, 10)
	if point >= 0 {
		dst = append(dst, '.', byte('0'+point))
	}
	return humanSuffix(dst, exponent, base1024)
}

// HumanRate formats the rate of n bytes over elapsed nanoseconds as GNU dd
// does ("2.1 MB/s", "0.0 kB/s", "Infinity B/s"): human_readable(n, opts,
// 1e9, ns), which is exact when one block size divides the other and falls
// back on floating point otherwise, as gnulib does.
func HumanRate(n uint64, ns int64) string {
	if ns <= 0 {
		return "Infinity B/s"
	}
	const from = uint64(1e9)
	to := uint64(ns)
	var dst []byte
	switch {
	case to <= from && from%to == 0:
		mult := from / to
		hi, lo := bits.Mul64(n, mult)
		if hi == 0 {
			dst = humanInt(nil, lo, 0, 0, false)
			return string(dst) + "/s"
		}
	case to > from && to%from == 0:
		divisor := to / from
		r10 := (n % divisor) * 10
		r2 := (r10 % divisor) * 2
		rounding := 0
		switch {
		case r2 < divisor && r2 > 0:
			rounding = 1
		case r2 == divisor:
			rounding = 2
		case r2 > divisor:
			rounding = 3
		}
		dst = humanInt(nil, n/divisor, int(r10/divisor), rounding, false)
		return string(dst) + "/s"
	}
	// Floating point path (gnulib uses long double; float64 differs only in
	// the last bits, which the one-decimal output does not show).
	damt := float64(n) * (float64(from) / float64(to))
	e := 1.0
	exponent := 0
	for {
		e *= 1000
		exponent++
		if !(e*1000 <= damt && exponent < len(powerLetter)-1) {
			break
		}
	}
	damt /= e
	s := strconv.FormatFloat(damt, 'f', 1, 64)
	// One decimal only while it fits in four characters ("12.3"), as gnulib's
	// "1 + nonintegerlen + !base1024 < buflen" test decides.
	if len(s) > 4 {
		s = strconv.FormatFloat(damt, 'f', 0, 64)
	}
	dst = append(dst, s...)
	return string(humanSuffix(dst, exponent, false)) + "/s"
}
