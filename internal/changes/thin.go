package changes

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Limits on thin_delta output that ParseThinDelta enforces before
// allocating: thin_delta writes short lines, at most four elements deep.
const (
	// maxThinToken bounds the bytes between two '>', so a tag, its
	// attributes or text between tags never grow without limit.
	maxThinToken = 4096
	// maxThinRanges bounds each list (16 bytes a range): past it a full
	// copy is cheaper to describe than the changes.
	maxThinRanges = 1 << 22
	// The kernel's data block size limits (dm-thin: 64 KiB to 1 GiB, in
	// multiples of 64 KiB), in 512-byte sectors.
	minThinBlockSectors, maxThinBlockSectors = 128, 1 << 21
)

// ThinDelta is what thin_delta(8) reports between an older and a newer thin
// device of one pool, in bytes of the thin devices.
type ThinDelta struct {
	Left, Right uint64 // the thin device ids compared (diff left, right)
	BlockSize   int64  // the pool's data block size

	// Changed holds the blocks mapped differently in Right than in Left
	// (different) or mapped in Right only (right_only): read and send.
	Changed List
	// Discarded holds the blocks mapped in Left only (left_only): the
	// newer device no longer maps them, so they read as zeros.
	Discarded List
}

// ParseThinDelta decodes the XML thin_delta(8) writes, in its plain or
// --verbose form, streaming:
//
//	<superblock uuid="" time="2" transaction="3" data_block_size="128" nr_data_blocks="1600">
//	  <diff left="1" right="2">
//	    <same begin="0" length="16"/>
//	    <different begin="16" length="1"/>
//	    <left_only begin="17" length="4"/>
//	    <right_only begin="30" length="2"/>
//	  </diff>
//	</superblock>
//
// data_block_size is in 512-byte sectors, begin and length in data blocks.
// It rejects anything else: unknown elements, ranges out of order or
// overlapping, truncated output (no closing </superblock>), numbers that
// overflow, tokens over 4 KiB. Over 4Mi ranges in either list the error
// matches ErrNoChangeList. Both lists come back normalised.
func ParseThinDelta(r io.Reader) (*ThinDelta, error) {
	return parseThinDelta(r, maxThinRanges)
}

func parseThinDelta(r io.Reader, maxRanges int) (*ThinDelta, error) {
	p := thinParser{d: xml.NewDecoder(&tokenLimiter{r: r}), maxRanges: maxRanges}
	if err := p.run(); err != nil {
		return nil, fmt.Errorf("parse thin_delta output: %w", err)
	}
	return &p.td, nil
}

type thinParser struct {
	d         *xml.Decoder
	td        ThinDelta
	stack     []string // open elements
	sb        bool     // superblock seen
	diff      bool     // diff seen
	done      bool     // superblock closed
	next      uint64   // end of the last range, in blocks
	maxRanges int
	// kindAttrs: the open kind element had begin/length (plain form), so
	// it may not hold range children.
	kindAttrs bool
}

func (p *thinParser) run() error {
	for {
		tok, err := p.d.Token()
		if err == io.EOF {
			if !p.done {
				return errors.New("truncated: no closing </superblock>")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if p.done {
				return fmt.Errorf("<%s> after </superblock>", t.Name.Local)
			}
			if err := p.start(t); err != nil {
				return err
			}
			p.stack = append(p.stack, t.Name.Local)
		case xml.EndElement:
			// The decoder has already matched it with its start.
			p.stack = p.stack[:len(p.stack)-1]
			if len(p.stack) == 0 {
				if !p.diff {
					return errors.New("no <diff> in <superblock>")
				}
				p.done = true
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("unexpected text %.40q", t)
			}
		case xml.Comment:
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("unexpected %T <?%s?>", t, t.Target)
			}
		default:
			return fmt.Errorf("unexpected %T", t)
		}
	}
}

func (p *thinParser) start(t xml.StartElement) error {
	parent := ""
	if len(p.stack) > 0 {
		parent = p.stack[len(p.stack)-1]
	}
	name := t.Name.Local
	if t.Name.Space != "" {
		return fmt.Errorf("unexpected element <%s:%s>", t.Name.Space, name)
	}
	switch {
	case name == "superblock" && parent == "" && !p.sb:
		p.sb = true
		v, err := attrUint(t, "data_block_size")
		if err != nil {
			return err
		}
		if v < minThinBlockSectors || v > maxThinBlockSectors || v%minThinBlockSectors != 0 {
			return fmt.Errorf("data_block_size %d sectors is not a multiple of 128 from 128 to %d", v, maxThinBlockSectors)
		}
		p.td.BlockSize = int64(v) * 512
	case name == "diff" && parent == "superblock" && !p.diff:
		p.diff = true
		var err error
		if p.td.Left, err = attrUint(t, "left"); err != nil {
			return err
		}
		if p.td.Right, err = attrUint(t, "right"); err != nil {
			return err
		}
	case isThinKind(name) && parent == "diff":
		// The plain form's kinds carry the range; the verbose form's hold
		// <range> children and no attributes. Either attribute alone is
		// a plain range missing the other, never a container.
		_, hasBegin := attr(t, "begin")
		_, hasLength := attr(t, "length")
		p.kindAttrs = hasBegin || hasLength
		if p.kindAttrs {
			return p.rangeOf(name, t)
		}
	case name == "range" && isThinKind(parent) && !p.kindAttrs:
		return p.rangeOf(parent, t)
	default:
		return fmt.Errorf("unexpected element <%s> in <%s>", name, parent)
	}
	return nil
}

func isThinKind(name string) bool {
	switch name {
	case "same", "different", "left_only", "right_only":
		return true
	}
	return false
}

// rangeOf adds the begin/length range of t to the list kind belongs to.
func (p *thinParser) rangeOf(kind string, t xml.StartElement) error {
	begin, err := attrUint(t, "begin")
	if err != nil {
		return err
	}
	n, err := attrUint(t, "length")
	if err != nil {
		return err
	}
	bs := uint64(p.td.BlockSize)
	if n > math.MaxInt64/bs || begin > math.MaxInt64/bs-n {
		return fmt.Errorf("<%s begin=%d length=%d> reaches past 8 EiB", kind, begin, n)
	}
	if begin < p.next {
		return fmt.Errorf("<%s begin=%d> starts before the end of the range before it (%d)", kind, begin, p.next)
	}
	p.next = begin + n
	r := Range{int64(begin * bs), int64(n * bs)}
	var l *List
	switch kind {
	case "different", "right_only":
		l = &p.td.Changed
	case "left_only":
		l = &p.td.Discarded
	default:
		return nil
	}
	*l = l.Append(r)
	if len(*l) > p.maxRanges {
		return fmt.Errorf("%w: more than %d separate ranges", ErrNoChangeList, p.maxRanges)
	}
	return nil
}

func attr(t xml.StartElement, name string) (string, bool) {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// attrUint returns the attribute name of t as a decimal uint64.
func attrUint(t xml.StartElement, name string) (uint64, error) {
	s, ok := attr(t, name)
	if !ok {
		return 0, fmt.Errorf("<%s> has no %s", t.Name.Local, name)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("<%s %s=%.24q>: not a decimal number", t.Name.Local, name, s)
	}
	return v, nil
}

// tokenLimiter fails a read once maxThinToken bytes pass without a '>'.
type tokenLimiter struct {
	r   io.Reader
	run int
}

func (l *tokenLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		if c == '>' {
			l.run = 0
		} else if l.run++; l.run > maxThinToken {
			return 0, fmt.Errorf("more than %d bytes without a '>'", maxThinToken)
		}
	}
	return n, err
}
