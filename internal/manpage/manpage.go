// Package manpage renders a tool's --help text as a roff man page (section
// 1), so that man/*.1 are made from the same text the tools print and
// cannot drift from it: TestManPages builds the tools, runs --help, renders
// each page and compares it with the committed one.
//
// The help text becomes the page's sections by a few plain rules: the
// first lines that start with "usage" (and their indented continuations)
// are the SYNOPSIS; a paragraph that starts with "Exit codes:" or "Exit
// status:" is EXIT STATUS; everything else, in order, is DESCRIPTION, set
// as the terminal shows it (no filling), so the options' columns stay.
package manpage

//go:generate go test -run TestManPages -update .

import (
	"strings"
)

// Page is what a man page holds beyond the help text.
type Page struct {
	Name    string   // the command: "blkcat"
	Summary string   // NAME's one line, after "name - "
	Help    string   // the --help text
	SeeAlso []string // "dd(1)", …
}

// Render returns p as a man(7) page.
func Render(p Page) []byte {
	synopsis, rest := splitSynopsis(p.Help)
	desc, exit := splitExit(rest)
	var b strings.Builder
	b.WriteString(`.\" Generated from "` + p.Name + ` --help" by internal/manpage; do not edit.` + "\n")
	b.WriteString(`.\" Regenerate: go test ./internal/manpage -run TestManPages -update` + "\n")
	b.WriteString(".TH " + escape(strings.ToUpper(p.Name)) + ` 1 "" "blkpipe" "User Commands"` + "\n")
	b.WriteString(".SH NAME\n" + escape(p.Name) + ` \- ` + escape(p.Summary) + "\n")
	section(&b, "SYNOPSIS", synopsis)
	section(&b, "DESCRIPTION", desc)
	section(&b, "EXIT STATUS", exit)
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		for i, s := range p.SeeAlso {
			name, sec, _ := strings.Cut(strings.TrimSuffix(s, ")"), "(")
			b.WriteString(".BR " + escape(name) + " (" + sec + ")")
			if i < len(p.SeeAlso)-1 {
				b.WriteString(" ,")
			}
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}

// section writes lines as an unfilled section; nothing when empty.
func section(b *strings.Builder, title string, lines []string) {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString(".SH " + title + "\n.nf\n")
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			b.WriteString(".sp\n") // a blank line in .nf is a warning in troff's eyes
			continue
		}
		b.WriteString(escape(l) + "\n")
	}
	b.WriteString(".fi\n")
}

// splitSynopsis takes the usage lines off the top of help: the first line
// must start with "usage" (any case); it and the lines after it that are
// indented, or start with "usage", form the synopsis, without the
// "usage:" word and with the indentation of continuations kept.
func splitSynopsis(help string) (synopsis, rest []string) {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	i := 0
	for ; i < len(lines); i++ {
		l := lines[i]
		lower := strings.ToLower(l)
		switch {
		case strings.HasPrefix(lower, "usage:"):
			if t := strings.TrimSpace(l[len("usage:"):]); t != "" {
				synopsis = append(synopsis, t)
			}
			continue
		case i > 0 && l != "" && (l[0] == ' ' || l[0] == '\t'):
			synopsis = append(synopsis, strings.TrimLeft(l, " \t"))
			continue
		}
		break
	}
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	return synopsis, lines[i:]
}

// splitExit takes the "Exit codes:" or "Exit status:" paragraph out of
// lines; its first line keeps what follows the colon.
func splitExit(lines []string) (desc, exit []string) {
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if (strings.HasPrefix(l, "Exit codes:") || strings.HasPrefix(l, "Exit status:")) && (i == 0 || lines[i-1] == "") {
			j := i
			for j < len(lines) && lines[j] != "" {
				j++
			}
			_, first, _ := strings.Cut(l, ":")
			if first = strings.TrimSpace(first); first != "" {
				exit = append(exit, first)
			}
			exit = append(exit, lines[i+1:j]...)
			desc = append(append(desc, lines[:i]...), lines[j:]...)
			return desc, exit
		}
	}
	return lines, nil
}

// escape makes s safe as roff text: backslashes, hyphens (a "-" is
// rendered as a hyphen, which breaks a pasted option), quotes, and a
// control character at the start of a line.
func escape(s string) string {
	r := strings.NewReplacer(`\`, `\e`, "-", `\-`, "'", `\(aq`, "`", `\(ga`)
	s = r.Replace(s)
	if strings.HasPrefix(s, ".") {
		s = `\&` + s
	}
	return s
}
