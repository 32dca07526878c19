package ddcopy

import (
	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"io"
	"syscall"

	"github.com/blkpipe/blkpipe/internal/blockdev"
)

// discardAtEOF is what dd does after a copy with count=0 and iflag=nocache
// or oflag=nocache: it asks the kernel to drop the whole file's cache,
// which needs the file's offset, so a pipe fails with "failed to discard
// cache for: 'standard input': Illegal seek" and exit status 1 (with data
// read, dd ignores the same failure). err is the copy's own result, which
// comes first. A failure on the input is reported through c.R when the
// output fails too, so that both are printed, as dd prints both.
func (c *Copier) discardAtEOF(err error) error {
	if err != nil || c.P.Count != 0 || c.P.CountTail != 0 {
		return err
	}
	var failed error
	if c.In.Nocache {
		if _, serr := c.In.F.Seek(0, io.SeekCurrent); serr != nil {
			// dd decided when it opened the input that it cannot seek,
			// and says ESPIPE whatever lseek said.
			failed = &ddmsg.Error{Msg: "failed to discard cache for: " + ddmsg.QuoteF(c.In.Name), Err: syscall.ESPIPE}
		} else {
			blockdev.DropCache(c.In.F, 0, 0)
		}
	}
	if c.Out.Nocache && c.Sink == nil {
		if _, serr := c.Out.F.Seek(0, io.SeekCurrent); serr != nil {
			if failed != nil {
				c.R.Diagnose(failed.Error())
			}
			failed = &ddmsg.Error{Msg: "failed to discard cache for: " + ddmsg.QuoteF(c.Out.Name), Err: serr}
		}
	}
	return failed
}
