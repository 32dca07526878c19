package send

import (
	"io"
	"sync/atomic"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
)

// output is where a sender writes its stream: the copy's output, its bytes
// counted in opt.Written when that is set (blkcat --json).
func (opt Options) output(c *ddcopy.Copier) io.Writer {
	if opt.Written == nil {
		return c.Out.F
	}
	return &countWriter{w: c.Out.F, n: opt.Written}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (cw *countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n.Add(int64(n))
	return n, err
}
