package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// While a changed-block delta writes a target whose kept state (copy
// record, digest map, kept sums) it verifies from, that state is set
// aside with the resume state instead of removed: the base's map is what
// a resumed delta verifies from. Beside it, the touched-leaves file lists
// the 64 KiB leaves the delta has written so far and the target's
// identity and Stamp when they were made durable: a resumed delta
// rehashes those leaves from the target, and trusts the map only if the
// target was not written since (Stamp unchanged). All of it goes with
// the resume state (Remove).

const leavesMagic = "blkpipe-resume-leaves 1"

func (d Dir) asidePaths(target string) (copyPath, mapPath, sumsPath string) {
	return d.file(target, ".resume-copy"), d.file(target, ".resume-b3map"), d.file(target, ".resume-keptsums")
}

// LeavesPath is target's touched-leaves file.
func (d Dir) LeavesPath(target string) string { return d.file(target, ".resume-leaves") }

// SetKeptAside moves target's copy record, map and kept sums aside for
// the resume state, the record first, so that no record is left vouching
// for a target being written. Files that are not there are no error.
func (d Dir) SetKeptAside(target string) error {
	ac, am, as := d.asidePaths(target)
	for _, p := range [][2]string{{d.CopyPath(target), ac}, {d.MapPath(target), am}, {d.SumsPath(target), as}} {
		if err := os.Rename(p[0], p[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// KeptAside loads the kept state SetKeptAside moved aside for target: the
// record, its map and its kept sums, checked against each other (not
// against the target, which the delta has written since).
func (d Dir) KeptAside(target string) (*Kept, []byte, error) {
	ac, am, as := d.asidePaths(target)
	c, err := loadCopy(ac, "set-aside copy record")
	if err != nil {
		return nil, nil, err
	}
	m, err := loadMap(am, "set-aside map", c)
	if err != nil {
		return nil, nil, err
	}
	if c.Alg != "blake3" {
		return nil, nil, errors.New("the set-aside map is of another copy")
	}
	s, err := loadSums(as, "set-aside block sums", c)
	if err != nil {
		return nil, nil, err
	}
	return &Kept{Copy: c, Map: m}, s, nil
}

// Leaves is the touched-leaves file: the target's identity (as Identify
// gives it) when the leaves were made durable, and the leaves written,
// as sorted, disjoint, inclusive ranges of leaf indexes.
type Leaves struct {
	Dev, Ino uint64
	Stamp    string
	Ranges   [][2]int64
}

// Add notes that leaves first to last were written, after any before.
func (l *Leaves) Add(first, last int64) {
	if n := len(l.Ranges); n > 0 && first <= l.Ranges[n-1][1]+1 {
		l.Ranges[n-1][1] = max(l.Ranges[n-1][1], last)
		return
	}
	l.Ranges = append(l.Ranges, [2]int64{first, last})
}

// SaveLeaves replaces target's touched-leaves file atomically.
func (d Dir) SaveLeaves(target string, l Leaves) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ndev %d ino %d stamp %s\n", leavesMagic, l.Dev, l.Ino, l.Stamp)
	for _, r := range l.Ranges {
		fmt.Fprintf(&b, "%d %d\n", r[0], r[1])
	}
	fmt.Fprintf(&b, "end\n")
	return d.replace(d.LeavesPath(target), b.Bytes())
}

// LoadLeaves reads target's touched-leaves file; a file that does not
// parse, or is cut short, is an error.
func (d Dir) LoadLeaves(target string) (Leaves, error) {
	var l Leaves
	b, err := os.ReadFile(d.LeavesPath(target))
	if err != nil {
		return l, err
	}
	damaged := fmt.Errorf("touched-leaves file %s is damaged", d.LeavesPath(target))
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != leavesMagic || !sc.Scan() {
		return l, damaged
	}
	if _, err := fmt.Sscanf(sc.Text(), "dev %d ino %d stamp %s", &l.Dev, &l.Ino, &l.Stamp); err != nil {
		return l, damaged
	}
	for sc.Scan() {
		if sc.Text() == "end" {
			return l, nil
		}
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return l, damaged
		}
		a, err1 := strconv.ParseInt(f[0], 10, 64)
		z, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || a < 0 || z < a || len(l.Ranges) > 0 && a <= l.Ranges[len(l.Ranges)-1][1] {
			return l, damaged
		}
		l.Ranges = append(l.Ranges, [2]int64{a, z})
	}
	return l, damaged
}

// removeResume removes target's resume state files beside the state
// file itself: the set-aside kept state and the touched leaves.
func (d Dir) removeResume(target string) error {
	ac, am, as := d.asidePaths(target)
	return remove(d.LeavesPath(target), ac, am, as)
}
