package send

import (
	"os"

	"github.com/blkpipe/blkpipe/internal/changes"
)

// compareFiles lists the bytes of snap that may differ from base, two
// reflink clones or btrfs snapshot files, from their extents.
func compareFiles(base, snap *os.File) (changes.List, error) { return changes.Compare(base, snap) }
