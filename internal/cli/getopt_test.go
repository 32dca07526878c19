package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testParser returns a Parser with pvcat-like options that logs what it
// sets, for comparing with the expected order of events.
func testParser(log *[]string, inOrder bool) *Parser {
	note := func(name string) func(string) error {
		return func(v string) error {
			if v == "bad" {
				return errors.New("no good")
			}
			*log = append(*log, name+"="+v)
			return nil
		}
	}
	return &Parser{InOrder: inOrder, Options: []Option{
		{'q', "quiet", NoArg, note("q")},
		{'n', "numeric", NoArg, note("n")},
		{'z', "compress", Required, note("z")},
		{'L', "rate-limit", Required, note("L")},
		{0, "stall", Required, note("stall")},
		{0, "json", NoArg, note("json")},
		{'F', "format", Optional, func(string) error { return Usagef("-F (--format) is not supported") }},
	}}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, args string
		inOrder    bool
		want       string // the options set, then "|" and the operands
	}{
		{"bundle with value after", "-qz lz4", false, "q= z=lz4 |"},
		{"bundle with attached value", "-qzlz4", false, "q= z=lz4 |"},
		{"pv's -nL1M", "-nL1M", false, "n= L=1M |"},
		{"long =", "--stall=5m --json", false, "stall=5m json= |"},
		{"long space", "--stall 5m", false, "stall=5m |"},
		{"value starting with dash", "-z -q --stall -1", false, "z=-q stall=-1 |"},
		{"empty attached value", "--compress=", false, "z= |"},
		{"single-dash long", "-json -stall=3", false, "json= stall=3 |"},
		{"double dash ends options", "-q -- -n x", false, "q= |-n x"},
		{"dash is an operand", "- -q", false, "q= |-"},
		{"operands permuted", "a -q b -n", false, "q= n= |a b"},
		{"in order stops at operand", "-q ORIGIN -n -- CMD", true, "q= |ORIGIN -n -- CMD"},
		{"in order double dash", "-q -- -n", true, "q= |-n"},
		{"repeat", "-qq", false, "q= q= |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			ops, err := testParser(&log, tt.inOrder).Parse(strings.Fields(tt.args))
			got := strings.Join(log, " ") + " |" + strings.Join(ops, " ")
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args string
		err  error // ErrHelp, ErrVersion, or nil: a usage error with msg
		msg  string
	}{
		{"--bogus", nil, "unknown option '--bogus'"},
		{"-qx", nil, "unknown option '-x'"},
		{"-bogus", nil, "unknown option '-bogus'"},
		{"--stall", nil, "option '--stall' requires an argument"},
		{"-q -z", nil, "option '-z' requires an argument"},
		{"-nL", nil, "option '-L' requires an argument"},
		{"--json=1", nil, "option '--json' doesn't allow an argument"},
		{"--stall bad", nil, "invalid argument 'bad' for '--stall': no good"},
		{"-Lbad", nil, "invalid argument 'bad' for '-L': no good"},
		{"-pF", nil, "unknown option '-pF'"},
		{"-qF%b", nil, "-F (--format) is not supported"},
		{"--format=%b", nil, "-F (--format) is not supported"},
		{"-F %b", nil, "-F (--format) is not supported"},
		{"-h", ErrHelp, ""},
		{"--help --bogus", ErrHelp, ""},
		{"-qV", ErrVersion, ""},
		{"--version", ErrVersion, ""},
		{"-version", ErrVersion, ""},
	}
	for _, tt := range tests {
		var log []string
		_, err := testParser(&log, false).Parse(strings.Fields(tt.args))
		switch {
		case tt.err != nil:
			if err != tt.err {
				t.Errorf("Parse(%q) = %v, want %v", tt.args, err, tt.err)
			}
		case !errors.Is(err, ErrUsage) || err.Error() != tt.msg:
			t.Errorf("Parse(%q) = %v, want usage error %q", tt.args, err, tt.msg)
		}
	}
}

func TestTypedOptions(t *testing.T) {
	var (
		b bool
		s string
		d time.Duration
		f float64
	)
	p := Parser{Options: []Option{Bool('b', "", &b), String('s', "str", &s), Duration('d', "dur", &d), Float(0, "warn", &f)}}
	if _, err := p.Parse([]string{"-bs", "x", "--dur=1d12h", "--warn", "80.5"}); err != nil || !b || s != "x" || d != 36*time.Hour || f != 80.5 {
		t.Errorf("got %v %q %v %v, %v", b, s, d, f, err)
	}
	for args, msg := range map[string]string{
		"--warn abc": "invalid argument 'abc' for '--warn': not a number",
		"-d 5x":      "invalid argument '5x' for '-d': " + errDuration.Error(),
	} {
		if _, err := p.Parse(strings.Fields(args)); err == nil || err.Error() != msg {
			t.Errorf("Parse(%q) = %v, want %q", args, err, msg)
		}
	}
}

func TestPrintError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"usage", Usagef("unknown option '--bogus'"), "tool: unknown option '--bogus'\nTry 'tool --help' for more information.\n"},
		{"wrapped usage", fmt.Errorf("x: %w", Usagef("bad")), "tool: x: bad\nTry 'tool --help' for more information.\n"},
		{"failure", errors.New("read /dev/sda: input/output error"), "tool: read /dev/sda: input/output error\n"},
		{"joined", errors.Join(errors.New("a"), errors.New("b")), "tool: a\ntool: b\n"},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		PrintError(&b, "tool", tt.err)
		if b.String() != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, b.String(), tt.want)
		}
	}
}

func TestHelpOrVersion(t *testing.T) {
	var b bytes.Buffer
	if done, err := HelpOrVersion(ErrHelp, &b, "tool", "HELP\n"); !done || err != nil || b.String() != "HELP\n" {
		t.Errorf("help: %v %v %q", done, err, b.String())
	}
	b.Reset()
	if done, err := HelpOrVersion(ErrVersion, &b, "tool", "HELP\n"); !done || err != nil || !strings.HasPrefix(b.String(), "tool ") || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("version: %v %v %q", done, err, b.String())
	}
	u := Usagef("x")
	if done, err := HelpOrVersion(u, &b, "tool", ""); done || err != u {
		t.Errorf("usage error: %v %v", done, err)
	}
}
