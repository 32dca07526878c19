package cli

import (
	"fmt"
	"slices"
	"strings"
)

// The exit codes of the blkpipe tools, one table for all four; each tool's
// --help shows its part of it (ExitHelp). Codes are never renumbered:
// scripts test them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2 // bad command line (as Go's flag package, and GNU's tools)
	ExitRefused = 3 // blkwrite --allow or blkcat --allow-read refused the request
	// ExitFileAccess is pvcat's status, as pv's, when a FILE operand
	// could not be opened (the others were copied); it shares 2 with
	// ExitUsage because pv's usage errors are 64. ExitSameFile: a FILE
	// was the output file (pv's 4, or'ed with 2 as pv does). ExitNoFile
	// is pv's 2|8 when none could be opened.
	ExitFileAccess = 2
	ExitSameFile   = 4
	ExitNoFile     = 10
	// ExitOverflow is snapctl run's EX_TEMPFAIL: the snapshot filled up
	// or went invalid.
	ExitOverflow    = 75
	ExitRunFailed   = 125 // snapctl run: creating or removing the snapshot failed
	ExitCannotExec  = 126 // snapctl run: CMD could not be executed (as sh)
	ExitNotFound    = 127 // snapctl run: CMD not found (as sh)
	ExitInterrupted = 130 // SIGINT, SIGTERM (snapctl: SIGHUP too): 128+SIGINT
)

type exitRow struct {
	code  string
	tools []string // nil: every tool
	text  string
}

// exitRows are the lines of the "Exit status:" text. A row with tools
// applies to those tools only and replaces a general row (no tools) of
// the same code.
var exitRows = []exitRow{
	{"0", nil, "success"},
	{"0", []string{"blkcat", "blkwrite"}, "success (a framed stream: written, durable and verified)"},
	{"0", []string{"pvcat"}, "done, or the reader downstream went away (quietly, as pv)"},
	{"0", []string{"snapctl"}, "success (run: CMD succeeded)"},
	{"1", nil, "failure"},
	{"1", []string{"blkcat", "blkwrite"}, "failure: open, read, write or sync error; target too small or in use; a damaged, cut or mismatched stream"},
	{"1", []string{"pvcat"}, "read or write error, or a stall (--stall)"},
	{"1", []string{"snapctl"}, "failure (create, list, remove, gc, changes)"},
	{"2", nil, "usage: unknown option, missing or invalid value, bad operand"},
	{"2", []string{"pvcat"}, "usage: unknown option, missing or invalid value; or a FILE could not be opened: reported and skipped, the others copied (as pv)"},
	{"3", []string{"blkcat", "blkwrite"}, "--allow (blkwrite) or --allow-read (blkcat) refused the client's request"},
	{"4", []string{"pvcat"}, "a FILE is the output file (pvcat log >> log): reported, and the copy stopped there (as pv); 6 if a FILE could not be opened too"},
	{"10", []string{"pvcat"}, "no FILE could be opened (as pv)"},
	{"75", []string{"snapctl"}, "run: the snapshot filled past --max-fill or became invalid; CMD was stopped and the snapshot removed: retry with a bigger --size or --extend, a thin volume, or at a quieter time"},
	{"125", []string{"snapctl"}, "run: snapctl failed (creating or removing the snapshot)"},
	{"126", []string{"snapctl"}, "run: CMD could not be executed"},
	{"127", []string{"snapctl"}, "run: CMD not found"},
	{"130", nil, "interrupted (SIGINT, SIGTERM)"},
	{"130", []string{"blkcat", "blkwrite"}, "interrupted by SIGTERM (the statistics are printed first); on SIGINT, as dd, the tool prints them and dies of SIGINT"},
	{"130", []string{"pvcat"}, "interrupted (SIGINT, SIGTERM); the last update is drawn first"},
	{"130", []string{"snapctl"}, "interrupted (SIGINT, SIGTERM, SIGHUP); the snapshot was removed"},
	{"141", []string{"blkcat"}, "the reader went away: killed by SIGPIPE, as dd and cat (started with SIGPIPE ignored: exit 1)"},
	{"N", []string{"snapctl"}, "run: CMD's own exit status; 128+N if CMD was killed by signal N"},
}

// ExitHelp returns the "Exit status:" block of tool's --help: the codes
// tool uses, from the one table all tools share, wrapped to 79 columns.
func ExitHelp(tool string) string {
	var b strings.Builder
	b.WriteString("Exit status:\n")
	for _, r := range exitRows {
		if r.tools != nil && !slices.Contains(r.tools, tool) {
			continue
		}
		if r.tools == nil && slices.ContainsFunc(exitRows, func(o exitRow) bool {
			return o.code == r.code && slices.Contains(o.tools, tool)
		}) {
			continue
		}
		line := fmt.Sprintf("  %-4s", r.code)
		for _, w := range strings.Fields(r.text) {
			if len(line)+1+len(w) > 79 {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", 6)
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
