package changes

import (
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
)

// ReadCOW opens the COW device of a classic snapshot read-only, with
// O_DIRECT so it sees what the kernel committed rather than stale page
// cache, and parses its exception store (ParseCOW).
func ReadCOW(path string) (*COW, error) {
	f, _, err := blockdev.OpenDirect(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseCOW(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
