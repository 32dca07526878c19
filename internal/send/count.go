package send

import (
	"io"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// output is where a sender writes its stream: the copy's output, its bytes
// counted in opt.Written when that is set (blkcat --json).
func (opt Options) output(c *ddcopy.Copier) io.Writer {
	if opt.Written == nil {
		return c.Out.F
	}
	return &progress.CountWriter{W: c.Out.F, N: opt.Written}
}
