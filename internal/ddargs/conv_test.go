package ddargs

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestTablesAgainstDD translates every byte with each charset and case
// conversion dd combines, and compares Table with dd's output (without
// cbs=, block and unblock are dropped and only the translation is left).
func TestTablesAgainstDD(t *testing.T) {
	needDD(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, charset := range []string{"", "ascii", "ebcdic", "ibm"} {
		for _, cas := range []string{"", "lcase", "ucase"} {
			convs := strings.Trim(charset+","+cas, ",")
			if convs == "" {
				continue
			}
			t.Run(convs, func(t *testing.T) {
				o, err := Parse([]string{"conv=" + convs})
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("dd", "conv="+convs, "status=none")
				cmd.Env = append(cmd.Environ(), "LC_ALL=C")
				cmd.Stdin = bytes.NewReader(all)
				want, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				tab := o.Text.Table()
				if !bytes.Equal(tab[:], want) {
					t.Errorf("Table() = %x\ndd gives  %x", tab[:], want)
				}
				if !o.Text.Translates() || !o.Text.Active() {
					t.Errorf("Translates() = %v, Active() = %v; want true", o.Text.Translates(), o.Text.Active())
				}
			})
		}
	}
}

func TestTextNewlineSpace(t *testing.T) {
	for _, tc := range []struct {
		name        string
		text        Text
		newline, sp byte
	}{
		{"ascii", Text{}, '\n', ' '},
		{"ebcdic", Text{EBCDIC: true}, 0x25, 0x40},
		{"ibm", Text{IBM: true}, 0x25, 0x40},
		{"from ebcdic", Text{ASCII: true}, '\n', ' '},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if nl, sp := tc.text.Newline(), tc.text.Space(); nl != tc.newline || sp != tc.sp {
				t.Errorf("Newline(), Space() = %#x, %#x; want %#x, %#x", nl, sp, tc.newline, tc.sp)
			}
		})
	}
}
