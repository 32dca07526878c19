package ddargs

import (
	"reflect"
	"strings"
	"testing"
)

// warningCases are command lines after which dd 9.1 prints warnings, with
// or without failing; ok is false when Parse fails (err is then its text).
var warningCases = []struct {
	name string
	args []string
	want []string // Warnings, or Warnings(err) when Parse fails
	err  string
}{
	{name: "append without notrunc", args: []string{"oflag=append"}, want: []string{appendWarning}},
	{name: "append with notrunc", args: []string{"oflag=append", "conv=notrunc"}},
	{name: "input append", args: []string{"iflag=append"}},
	{name: "append with status=none", args: []string{"oflag=append", "status=none"}, want: []string{appendWarning}},
	{name: "zero multiplier then append", args: []string{"oflag=append", "count=0x1"}, want: []string{zeroMultiplierWarning, appendWarning}},
	{name: "zero multiplier, invalid number", args: []string{"bs=0x5"}, want: []string{zeroMultiplierWarning}, err: "invalid number: '0x5'"},
	{name: "zero multiplier, later invalid number", args: []string{"count=0x1", "bs=0x5"},
		want: []string{zeroMultiplierWarning, zeroMultiplierWarning}, err: "invalid number: '0x5'"},
	{name: "zero multiplier, unknown operand", args: []string{"bs=0x1", "foo=bar"}, want: []string{zeroMultiplierWarning}, err: "invalid number: '0x1'"},
	{name: "zero multiplier, then unknown operand", args: []string{"count=0x1", "foo=bar"}, want: []string{zeroMultiplierWarning}, err: "unrecognized operand 'foo=bar'"},
	{name: "no zero multiplier for a bad product", args: []string{"oflag=append", "bs=0x5x1"}, err: "invalid number: '0x5x1'"},
	{name: "append, then conflicting flags", args: []string{"oflag=append", "conv=excl,nocreat"}, err: "cannot combine excl and nocreat"},
	{name: "append, then empty of", args: []string{"oflag=append", "of="}, want: []string{appendWarning}, err: "failed to open '': No such file or directory"},
	{name: "append, then empty if", args: []string{"oflag=append", "if="}, want: []string{appendWarning}, err: "failed to open '': No such file or directory"},
	{name: "append, then seek too large", args: []string{"oflag=append", "of=$OUT", "seek=1E"}, want: []string{appendWarning},
		err: "offset too large: cannot truncate to a length of seek=1152921504606846976 (512-byte) blocks"},
}

func TestWarnings(t *testing.T) {
	for _, tc := range warningCases {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = expand(a, "/input", "/output")
			}
			o, err := Parse(args)
			var got []string
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Parse(%q): %v", args, err)
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Fatalf("Parse(%q) = %v, want error %q", args, err, tc.err)
			case err != nil:
				got = Warnings(err)
			default:
				got = o.Warnings
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q) warnings %q, want %q", args, got, tc.want)
			}
		})
	}
}

// TestWarningsAgainstDD checks warningCases against dd: the same warnings
// in the same order, then the same error.
func TestWarningsAgainstDD(t *testing.T) {
	needDD(t)
	for _, tc := range warningCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = expand(a, dir+"/in", dir+"/out")
			}
			r := runDD(t, dir, args...)
			if !reflect.DeepEqual(r.warnings, tc.want) {
				t.Errorf("dd %q warned %q, want %q", args, r.warnings, tc.want)
			}
			if tc.err == "" {
				if r.code != 0 {
					t.Errorf("dd %q: exit %d, %q", args, r.code, r.first)
				}
			} else if r.code == 0 || r.first != strings.ReplaceAll(tc.err, "$OUT", dir+"/out") {
				t.Errorf("dd %q: exit %d, %q; want %q", args, r.code, r.first, tc.err)
			}
		})
	}
}

func TestWarningsOfOtherErrors(t *testing.T) {
	if w := Warnings(nil); w != nil {
		t.Errorf("Warnings(nil) = %q", w)
	}
	if _, err := Parse([]string{"--help"}); Warnings(err) != nil {
		t.Errorf("Warnings(%v) = %q", err, Warnings(err))
	}
}
