package changes

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A list file carries a List from the tool that knows the snapshots
// (snapctl changes) to the one that reads them (blkcat --changes):
//
//	blkpipe-changes 1
//	OFF LEN
//	...
//	end COUNT BYTES
//
// one range per line in decimal bytes, normalised, then a last line with
// the number of ranges and the bytes they cover, so that a truncated list,
// which would silently leave changed blocks behind, is refused.

const listMagic = "blkpipe-changes 1"

// ErrListFile means a list file is malformed or truncated.
var ErrListFile = errors.New("invalid change list file")

// maxListRanges bounds the ranges ReadList accepts (16 bytes each in
// memory).
const maxListRanges = 1 << 26

// WriteList writes l in the list file format.
func WriteList(w io.Writer, l List) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, listMagic)
	for _, r := range l {
		fmt.Fprintf(bw, "%d %d\n", r.Off, r.Len)
	}
	fmt.Fprintf(bw, "end %d %d\n", len(l), l.Bytes())
	return bw.Flush()
}

// ReadList reads a list file. The ranges must be normalised (sorted, not
// touching) and the end line must match them; every failure wraps
// ErrListFile.
func ReadList(r io.Reader) (List, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() || sc.Text() != listMagic {
		return nil, fmt.Errorf("%w: no %q line", ErrListFile, listMagic)
	}
	var l List
	for line := 2; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "end" {
			n, err1 := strconv.ParseInt(f[1], 10, 64)
			b, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil || n != int64(len(l)) || b != l.Bytes() {
				return nil, fmt.Errorf("%w: line %d: end says %s ranges of %s bytes, the list has %d of %d", ErrListFile, line, f[1], f[2], len(l), l.Bytes())
			}
			if sc.Scan() {
				return nil, fmt.Errorf("%w: line %d: text after the end line", ErrListFile, line+1)
			}
			return l, sc.Err()
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: want OFF LEN", ErrListFile, line)
		}
		off, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.ParseInt(f[1], 10, 64)
		rg := Range{off, n}
		if err1 != nil || err2 != nil || off < 0 || n <= 0 || rg.End() == 1<<63-1 ||
			(len(l) > 0 && off <= l[len(l)-1].End()) || len(l) >= maxListRanges {
			return nil, fmt.Errorf("%w: line %d: range %q out of order, overlapping or out of bounds", ErrListFile, line, sc.Text())
		}
		l = append(l, rg)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: no end line (truncated)", ErrListFile)
}
