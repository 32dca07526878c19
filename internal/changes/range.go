package changes

import (
	"math"
	"slices"
)

// Range is Len bytes from byte offset Off.
type Range struct {
	Off, Len int64
}

// End returns Off+Len, saturated at math.MaxInt64. Len must not be
// negative.
func (r Range) End() int64 {
	if r.Off > 0 && r.Len > math.MaxInt64-r.Off {
		return math.MaxInt64
	}
	return r.Off + r.Len
}

// List is a set of byte ranges. Every List this package returns is
// normalised: sorted by Off, each Len > 0, Off >= 0, and ranges neither
// overlap nor touch (adjacent ranges are coalesced).
type List []Range

// Normalize sorts rs in place, drops empty ranges, clips negative offsets
// to 0 and ends past math.MaxInt64 to it, and merges ranges that overlap or touch. It returns the normalised
// list, which shares rs's backing array.
func Normalize(rs []Range) List {
	out := rs[:0]
	for _, r := range rs {
		if r.Len <= 0 {
			continue
		}
		if r.Off < 0 {
			r = Range{0, r.Off + r.Len} // cannot overflow: Off < 0 < Len
		}
		r.Len = r.End() - r.Off // saturate: no range ends past MaxInt64
		if r.Len > 0 {
			out = append(out, r)
		}
	}
	if !slices.IsSortedFunc(out, cmpOff) {
		slices.SortFunc(out, cmpOff)
	}
	// l reuses out's array: Append writes at an index no greater than the
	// one the loop is reading, so it never overwrites an unread range.
	l := List(out[:0])
	for _, r := range out {
		l = l.Append(r)
	}
	return l
}

func cmpOff(a, b Range) int {
	switch {
	case a.Off < b.Off:
		return -1
	case a.Off > b.Off:
		return 1
	}
	return 0
}

// Append adds r to the normalised list l, which must hold no range starting
// after r.Off, and returns the result: r is merged into the last range when
// it overlaps or touches it. Empty ranges are ignored. Producers that see
// ranges in ascending order build their List with Append.
func (l List) Append(r Range) List {
	if r.Len <= 0 {
		return l
	}
	if n := len(l); n > 0 {
		last := &l[n-1]
		if r.Off <= last.End() {
			if e := r.End(); e > last.End() {
				last.Len = e - last.Off
			}
			return l
		}
	}
	return append(l, r)
}

// Bytes returns the number of bytes l covers.
func (l List) Bytes() int64 {
	var n int64
	for _, r := range l {
		n += r.Len
	}
	return n
}

// Covers reports whether every byte of r lies in l, which must be
// normalised.
func (l List) Covers(r Range) bool {
	if r.Len <= 0 {
		return true
	}
	i, _ := slices.BinarySearchFunc(l, r.Off, func(x Range, off int64) int {
		switch {
		case x.End() <= off:
			return -1
		case x.Off > off:
			return 1
		}
		return 0
	})
	return i < len(l) && l[i].Off <= r.Off && r.End() <= l[i].End()
}

// Align returns l with every range widened outward to multiples of unit
// and clipped to [0, size), coalesced again; a copy, l is not changed.
// Copy tools call it to read whole leaves (64 KiB) or blocks (4 KiB), and
// with the volume's size so no range reaches past its end. unit must be
// positive; unit 1 only clips.
func (l List) Align(unit, size int64) List {
	if unit <= 0 {
		panic("changes: Align with a unit <= 0")
	}
	out := make(List, 0, len(l))
	for _, r := range l {
		off := r.Off - r.Off%unit
		end := r.End()
		if m := end % unit; m != 0 {
			if end > math.MaxInt64-(unit-m) {
				end = math.MaxInt64
			} else {
				end += unit - m
			}
		}
		end = min(end, size)
		if off < end {
			out = out.Append(Range{off, end - off})
		}
	}
	return out
}
