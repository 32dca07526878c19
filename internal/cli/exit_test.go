package cli

import (
	"strings"
	"testing"
)

func TestExitHelp(t *testing.T) {
	tests := []struct {
		tool        string
		want, never []string
	}{
		{"pvcat", []string{"  0    done, or the reader downstream", "  1    read or write error, or a stall", "  2    usage:", "or a FILE could not be", "  10   no FILE", "  130  interrupted (SIGINT, SIGTERM); the last"},
			[]string{"  3 ", "  75 ", "  0    success"}},
		{"snapctl", []string{"  0    success (run: CMD succeeded)", "  75   run: the snapshot filled", "  125  run: snapctl failed",
			"  126  ", "  127  ", "  130  interrupted (SIGINT, SIGTERM, SIGHUP)", "  N    run: CMD's own"}, []string{"  3 "}},
		{"blkwrite", []string{"  3    --allow (blkwrite) or --allow-read (blkcat) refused", "  130  interrupted by SIGTERM"}, []string{"  141 ", "  75 ", "  10 ", "FILE"}},
		{"blkcat", []string{"  141  the reader went away", "  3    --allow (blkwrite) or --allow-read (blkcat) refused"}, []string{"  75 ", "  10 "}},
	}
	for _, tt := range tests {
		got := ExitHelp(tt.tool)
		if !strings.HasPrefix(got, "Exit status:\n") {
			t.Errorf("%s: %q", tt.tool, got)
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: ExitHelp lacks %q:\n%s", tt.tool, w, got)
			}
		}
		for _, n := range tt.never {
			if strings.Contains(got, n) {
				t.Errorf("%s: ExitHelp has %q:\n%s", tt.tool, n, got)
			}
		}
		for _, l := range strings.Split(got, "\n") {
			if len(l) > 79 {
				t.Errorf("%s: line longer than 79 columns: %q", tt.tool, l)
			}
		}
	}
}
