package ddcopy

import (
	"math"
	"math/bits"

	"github.com/blkpipe/blkpipe/internal/ddargs"
)

// mulAdd returns n*size+tail for non-negative operands, and false when that
// does not fit an off_t: dd checks skip= and seek= with INT_MULTIPLY_WRAPV
// and INT_ADD_WRAPV before it seeks, and fails rather than wrap.
func mulAdd(n, size, tail int64) (int64, bool) {
	if n < 0 || size < 0 || tail < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(n), uint64(size))
	if hi != 0 || lo > math.MaxInt64-uint64(tail) {
		return 0, false
	}
	return int64(lo) + tail, true
}

// satMulAdd is mulAdd saturated at MaxInt64, for counts: more bytes than
// an off_t holds is no limit at all, as dd's count=1E copies everything.
func satMulAdd(n, size, tail int64) int64 {
	if v, ok := mulAdd(n, size, tail); ok {
		return v
	}
	return math.MaxInt64
}

// addSat returns a+b for non-negative ints, saturated at MaxInt.
func addSat(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// lcmFit returns the least common multiple of a and b (both positive) and
// whether it is at most limit (false too when it overflows).
func lcmFit(a, b, limit int) (int, bool) {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	hi, lo := bits.Mul64(uint64(a/x), uint64(b))
	if hi != 0 || lo > uint64(limit) {
		return 0, false
	}
	return int(lo), true
}

// obsInUse is the output block size the copy writes with: obs= when it
// reblocks, else every read is a write of up to ibs bytes.
func (p Params) obsInUse() int {
	if p.Reblock {
		return p.OBS
	}
	return p.IBS
}

// SkipOffset returns the input offset skip= asks for, in bytes, and false
// when it does not fit an off_t (dd then fails on a seekable input with
// "cannot skip: Value too large for defined data type").
func (p Params) SkipOffset() (int64, bool) {
	return mulAdd(p.Skip, int64(p.IBS), p.SkipTail)
}

// SeekOffset returns the output offset seek= asks for, in bytes, and false
// when it does not fit an off_t ("cannot seek: Value too large for defined
// data type").
func (p Params) SeekOffset() (int64, bool) {
	return mulAdd(p.Seek, int64(p.obsInUse()), p.SeekTail)
}

// CountLimit returns the most input bytes count= lets through, saturated at
// MaxInt64 (count=1E is no limit, as in dd), or -1 without count=.
func (p Params) CountLimit() int64 {
	if p.Count < 0 {
		return -1
	}
	return satMulAdd(p.Count, int64(p.IBS), p.CountTail)
}

// ParamsOf resolves dd operands into the engine's parameters.
func ParamsOf(o *ddargs.Operands) Params {
	p := Params{
		IBS: int(o.IBS), OBS: int(o.OBS), Reblock: o.BS == 0 || o.Text.Active(), Text: o.Text,
		Count: -1,
		Sync:  o.Conv.Sync, Noerror: o.Conv.Noerror, Sparse: o.Conv.Sparse,
		Fullblock: o.IFlag.Fullblock, Fsync: o.Conv.Fsync, Fdatasync: o.Conv.Fdatasync,
		Direct: o.IFlag.Direct || o.OFlag.Direct,
	}
	p.Skip, p.SkipTail = o.SkipSplit()
	p.Seek, p.SeekTail = o.SeekSplit()
	if o.Count >= 0 {
		p.Count, p.CountTail = o.CountSplit()
	}
	return p
}

// StreamSize is the number of bytes a copy with p will read from in, or -1
// when that is not known in advance.
func (p Params) StreamSize(in *Input) int64 {
	size := int64(-1)
	if p.Text.Active() {
		return -1 // conv=block and unblock change the length
	}
	if in.Seekable && in.Size >= 0 {
		skip, ok := p.SkipOffset()
		if !ok {
			return -1 // the copy fails: cannot skip
		}
		size = max(in.Size-skip, 0)
		if limit := p.CountLimit(); limit >= 0 {
			size = min(size, limit)
		}
		if p.Sync && size%int64(p.IBS) != 0 {
			size += int64(p.IBS) - size%int64(p.IBS)
		}
	}
	return size
}
