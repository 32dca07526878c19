package changes

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

const thinHead = `<superblock uuid="" time="2" transaction="3" data_block_size="128" nr_data_blocks="1600">
  <diff left="1" right="2">
`
const thinTail = "  </diff>\n</superblock>\n"

func TestParseThinDelta(t *testing.T) {
	const B = 64 << 10 // data_block_size 128 sectors
	for _, tc := range []struct {
		name            string
		in              string
		changed, zeroed List
		blockSize       int64
	}{
		{"no changes", thinHead + `    <same begin="0" length="1600"/>` + "\n" + thinTail, List{}, List{}, B},
		{"empty diff", thinHead + thinTail, List{}, List{}, B},
		{"all kinds", thinHead + `
    <same begin="0" length="16"/>
    <different begin="16" length="1"/>
    <left_only begin="17" length="4"/>
    <right_only begin="30" length="2"/>
    <different begin="32" length="3"/>
    <same begin="35" length="10"/>
` + thinTail, List{{16 * B, B}, {30 * B, 5 * B}}, List{{17 * B, 4 * B}}, B},
		{"verbose", thinHead + `
    <same>
      <range begin="0" data_begin="0" length="16"/>
    </same>
    <different>
      <range begin="16" left_data_begin="16" right_data_begin="900" length="1"/>
      <range begin="20" left_data_begin="20" right_data_begin="901" length="2"/>
    </different>
    <left_only>
      <range begin="22" data_begin="22" length="1"/>
    </left_only>
    <right_only>
      <range begin="23" data_begin="902" length="1"/>
    </right_only>
` + thinTail, List{{16 * B, B}, {20 * B, 2 * B}, {23 * B, B}}, List{{22 * B, B}}, B},
		{"1 MiB blocks", strings.Replace(thinHead, `"128"`, `"2048"`, 1) +
			`<right_only begin="3" length="2"/>` + thinTail, List{{3 << 20, 2 << 20}}, List{}, 1 << 20},
		{"comment and declaration", `<?xml version="1.0"?>` + "\n<!-- thin_delta -->\n" + thinHead + thinTail,
			List{}, List{}, B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td, err := ParseThinDelta(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ParseThinDelta: %v", err)
			}
			if td.Left != 1 || td.Right != 2 || td.BlockSize != tc.blockSize {
				t.Errorf("left %d right %d block size %d, want 1 2 %d", td.Left, td.Right, td.BlockSize, tc.blockSize)
			}
			if !slices.Equal(td.Changed, tc.changed) && len(td.Changed)+len(tc.changed) > 0 {
				t.Errorf("Changed = %v, want %v", td.Changed, tc.changed)
			}
			if !slices.Equal(td.Discarded, tc.zeroed) && len(td.Discarded)+len(tc.zeroed) > 0 {
				t.Errorf("Discarded = %v, want %v", td.Discarded, tc.zeroed)
			}
		})
	}
}

func TestParseThinDeltaRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "truncated"},
		{"truncated", thinHead + `<different begin="1" length="1"/>`, "EOF"},
		{"no diff", `<superblock data_block_size="128"></superblock>`, "no <diff>"},
		{"two diffs", thinHead + `</diff><diff left="1" right="2">` + thinTail, "unexpected element <diff>"},
		{"after end", thinHead + thinTail + "<superblock/>", "after </superblock>"},
		{"unknown element", thinHead + `<moved begin="1" length="1"/>` + thinTail, "unexpected element <moved>"},
		{"range in plain kind", thinHead + `<different begin="1" length="1"><range begin="2" length="1"/></different>` + thinTail, "unexpected element <range>"},
		{"range outside kind", thinHead + `<range begin="2" length="1"/>` + thinTail, "unexpected element <range>"},
		{"text", thinHead + "hello" + thinTail, "unexpected text"},
		{"processing instruction", `<?php x?>` + thinHead + thinTail, "unexpected xml.ProcInst"},
		{"doctype", `<!DOCTYPE superblock>` + thinHead + thinTail, "unexpected xml.Directive"},
		{"no block size", `<superblock><diff left="1" right="2"/></superblock>`, "no data_block_size"},
		{"odd block size", strings.Replace(thinHead, `"128"`, `"100"`, 1) + thinTail, "data_block_size 100"},
		{"huge block size", strings.Replace(thinHead, `"128"`, `"4194304"`, 1) + thinTail, "data_block_size"},
		{"no length", thinHead + `<different begin="1"/>` + thinTail, "no length"},
		{"no begin", thinHead + `<right_only length="5"/>` + thinTail, "no begin"},
		{"negative", thinHead + `<different begin="-1" length="1"/>` + thinTail, "not a decimal"},
		{"hex", thinHead + `<different begin="0x10" length="1"/>` + thinTail, "not a decimal"},
		{"overflow", thinHead + `<right_only begin="18446744073709551615" length="1"/>` + thinTail, "8 EiB"},
		{"overflow bytes", thinHead + `<right_only begin="1" length="144115188075855871"/>` + thinTail, "8 EiB"},
		{"out of order", thinHead + `<different begin="10" length="1"/><right_only begin="5" length="1"/>` + thinTail, "starts before"},
		{"overlap", thinHead + `<different begin="10" length="5"/><left_only begin="14" length="1"/>` + thinTail, "starts before"},
		{"mismatched tags", thinHead + `<different begin="1" length="1"></same>` + thinTail, "syntax error"},
		{"long token", thinHead + `<different begin="1" length="1" x="` + strings.Repeat("a", 5000) + `"/>` + thinTail, "without a '>'"},
		{"namespace", thinHead + `<x:different xmlns:x="y" begin="1" length="1"/>` + thinTail, "unexpected element <y:different>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td, err := ParseThinDelta(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseThinDelta = %+v, %v; want an error containing %q", td, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "parse thin_delta output: ") {
				t.Errorf("error %q does not say what was parsed", err)
			}
		})
	}
}

func TestParseThinDeltaTooManyRanges(t *testing.T) {
	const limit = 1000
	if _, err := parseThinDelta(&thinGen{n: limit}, limit); err != nil {
		t.Fatalf("%d separate ranges: %v", limit, err)
	}
	_, err := parseThinDelta(&thinGen{n: limit + 1}, limit)
	if !errors.Is(err, ErrNoChangeList) {
		t.Fatalf("%d separate ranges: %v, want ErrNoChangeList", limit+1, err)
	}
}

// thinGen generates thin_delta output with n separate right_only blocks.
type thinGen struct {
	n, i int
	buf  []byte
	tail bool
}

func (g *thinGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && !g.tail {
		switch {
		case g.i == 0 && len(g.buf) == 0:
			g.buf = append(g.buf, thinHead...)
		case g.i < g.n:
			g.buf = fmt.Appendf(g.buf, "<right_only begin=\"%d\" length=\"1\"/>\n", 2*g.i)
			g.i++
		default:
			g.buf = append(g.buf, thinTail...)
			g.tail = true
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// FuzzParseThinDelta feeds arbitrary bytes to the parser: it must not
// panic, and what it accepts must be normalised and survive a round trip
// through the plain form.
func FuzzParseThinDelta(f *testing.F) {
	f.Add([]byte(thinHead + `<same begin="0" length="16"/><different begin="16" length="1"/>
<left_only begin="17" length="4"/><right_only begin="30" length="2"/>` + thinTail))
	f.Add([]byte(thinHead + `<different><range begin="16" left_data_begin="1" right_data_begin="2" length="1"/></different>` + thinTail))
	f.Add([]byte(`<superblock data_block_size="2097152"><diff left="0" right="18446744073709551615"></diff></superblock>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		td, err := ParseThinDelta(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		checkNormal(t, td.Changed)
		checkNormal(t, td.Discarded)
		if td.BlockSize < 64<<10 || td.BlockSize%(64<<10) != 0 {
			t.Fatalf("block size %d accepted", td.BlockSize)
		}
		type kr struct {
			kind string
			r    Range
		}
		var all []kr
		for _, r := range td.Changed {
			all = append(all, kr{"right_only", r})
		}
		for _, r := range td.Discarded {
			all = append(all, kr{"left_only", r})
		}
		slices.SortFunc(all, func(a, b kr) int { return cmpOff(a.r, b.r) })
		var sb strings.Builder
		fmt.Fprintf(&sb, "<superblock data_block_size=\"%d\"><diff left=\"%d\" right=\"%d\">\n", td.BlockSize/512, td.Left, td.Right)
		for _, x := range all {
			if x.r.Off%td.BlockSize != 0 || x.r.Len%td.BlockSize != 0 {
				t.Fatalf("range %v is not whole blocks of %d", x.r, td.BlockSize)
			}
			fmt.Fprintf(&sb, "<%s begin=\"%d\" length=\"%d\"/>\n", x.kind, x.r.Off/td.BlockSize, x.r.Len/td.BlockSize)
		}
		sb.WriteString("</diff></superblock>\n")
		again, err := ParseThinDelta(strings.NewReader(sb.String()))
		if err != nil {
			t.Fatalf("re-encoded output refused: %v\n%s", err, sb.String())
		}
		if !slices.Equal(again.Changed, td.Changed) || !slices.Equal(again.Discarded, td.Discarded) {
			t.Fatalf("round trip changed the lists: %+v, then %+v", td, again)
		}
	})
}
