package cli

import "path/filepath"

// StateDirVar names blkpipe's state directory; DefaultStateDir is used
// when it is unset or empty.
const (
	StateDirVar     = "BLKPIPE_STATE_DIR"
	DefaultStateDir = "/var/lib/blkpipe"
)

// StateDir says where a tool keeps its state: $BLKPIPE_STATE_DIR (default
// /var/lib/blkpipe), or its subdirectory Sub. A tool that had its own
// place before (snapctl: $SNAPCTL_STATE_DIR, default /var/lib/snapctl)
// names it in OldVar and OldDir, so that existing state is still found.
// The zero value is blkcat's and blkwrite's: the directory itself.
type StateDir struct {
	Sub    string // subdirectory of the blkpipe state directory; "": none
	OldVar string // the variable the tool read before BLKPIPE_STATE_DIR
	OldDir string // the tool's default before; kept while it exists
}

// Path returns the directory, in this order: $BLKPIPE_STATE_DIR/Sub; the
// value of $OldVar; OldDir if isDir says it exists (an existing install,
// whose state must not be lost); DefaultStateDir/Sub. main passes
// os.Getenv and a stat; isDir may be nil when OldDir is "".
func (s StateDir) Path(getenv func(string) string, isDir func(string) bool) string {
	if d := getenv(StateDirVar); d != "" {
		return filepath.Join(d, s.Sub)
	}
	if s.OldVar != "" {
		if d := getenv(s.OldVar); d != "" {
			return d
		}
	}
	if s.OldDir != "" && isDir(s.OldDir) {
		return s.OldDir
	}
	return filepath.Join(DefaultStateDir, s.Sub)
}

// SnapctlStateDir is where snapctl keeps the state of btrfs and reflink
// snapshots, and blkwrite --keep that of the versions it keeps:
// existing installs keep /var/lib/snapctl.
var SnapctlStateDir = StateDir{Sub: "snapctl", OldVar: "SNAPCTL_STATE_DIR", OldDir: "/var/lib/snapctl"}
