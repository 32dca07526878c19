// Package buildinfo tells which blkpipe a binary is, for the tools'
// --version: the module version the go command stamped into it and, for a
// build from a git checkout, the commit.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version is the blkpipe version: the module version ("v1.2.3" when built
// with go install …@v1.2.3, "(devel)" from a checkout), followed by the
// commit's first 12 hex digits and "+dirty" for uncommitted changes when
// the build recorded them.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return describe(bi)
}

func describe(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" || strings.Contains(v, rev[:min(12, len(rev))]) {
		return v
	}
	v += " " + rev[:min(12, len(rev))]
	if dirty {
		v += "+dirty"
	}
	return v
}

// Line is what a tool's --version prints: "blkcat (devel) 0123456789ab".
func Line(tool string) string {
	return tool + " " + Version()
}
