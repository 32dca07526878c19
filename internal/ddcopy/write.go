package ddcopy

import (
	"context"
	"errors"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// writeAll writes the chunks the reader queues, in order, and accounts
// records in and out as dd would have counted them.
func (c *Copier) writeAll(ctx context.Context, queue <-chan *chunk, free chan<- []byte) error {
	var (
		written int64 // output stream bytes written (w_bytes)
		pending error // the input error that ended the stream
	)
	for ch := range queue {
		<-ch.done
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lent := false
		if ch.buf != nil && ch.n > 0 {
			var w int
			var err error
			if owner, ok := c.Sink.(OwningSink); ok {
				buf := ch.buf
				c.lent.Add(1)
				lent = true
				w, err = owner.WriteOwned(buf[:ch.n], func() {
					free <- buf
					c.lent.Done()
				})
			} else {
				w, err = c.writeChunk(ch.buf[:ch.n], ch.recs, ch.off)
			}
			written += int64(w)
			if err != nil {
				c.accountFailure(ch, written)
				e := error(&ddmsg.Error{Msg: c.writeErrorMsg(ch, written, queue, free) + ddmsg.Quote(c.Out.Name), Err: err})
				if c.OnWriteError != nil {
					e = c.OnWriteError(e, written)
				}
				return e
			}
		}
		before := c.R.C.Bytes.Load()
		c.accountIn(c.reportNotes(ch))
		if c.P.Reblock {
			c.R.C.OutFull.Store(written / int64(c.obs))
		}
		c.R.C.Bytes.Store(written)
		if ch.n > 0 || !ch.eof {
			// dd prints status=progress before each read; the read
			// that finds the end of the input is its last, so the
			// end itself draws no line.
			c.R.TickBytes(time.Now(), c.tickBytes(ch, before, written))
		}
		if ch.buf != nil && !lent {
			free <- ch.buf
		}
		if ch.err != nil {
			pending = ch.err
		}
		if ch.eof || ch.err != nil {
			break
		}
	}
	if c.P.Reblock && written%int64(c.obs) != 0 {
		c.R.C.OutPartial.Store(1)
	}
	return pending
}

// reportNotes reports ch's read errors that conv=noerror went on after, as
// dd does when it meets one: the error (unless status=none), then the
// statistics as they stood before the failed read, which only the writer
// knows. It accounts the records before the last of them and returns the
// rest.
func (c *Copier) reportNotes(ch *chunk) []run {
	recs := ch.recs
	for _, nt := range ch.notes {
		at := ch.off + int64(nt.pos)
		k := 0
		for k < len(recs) && recs[k].off < at {
			k++
		}
		c.accountIn(recs[:k])
		recs = recs[k:]
		if c.P.Reblock {
			// Only whole obs blocks were written by then.
			c.R.C.OutFull.Store(at / int64(c.obs))
			c.R.C.Bytes.Store(at / int64(c.obs) * int64(c.obs))
		} else {
			c.R.C.Bytes.Store(at)
		}
		if c.R.Level != progress.LevelNone {
			c.R.Diagnose(nt.err.Error())
		}
		c.R.Report(time.Now())
	}
	return recs
}

// writeErrorMsg words a failed write as dd does for the write it would
// have failed on: when reblocking, a full obs block is written by
// write_output ("writing to 'x'") and only the final short block by
// dd_copy ("error writing 'x'"); a bs= copy writes each read in dd_copy.
// written is the stream offset the failure is at. When the block there
// is not complete in ch, dd would have read on until it was, or until the
// input ended: so does writeErrorMsg, accounting the records it reads as
// dd's.
func (c *Copier) writeErrorMsg(ch *chunk, written int64, queue <-chan *chunk, free chan<- []byte) string {
	if !c.P.Reblock {
		return "error writing "
	}
	blockEnd := written/int64(c.obs)*int64(c.obs) + int64(c.obs)
	end, last := ch.off+int64(ch.n), ch.eof || ch.err != nil
	for !last && end < blockEnd && c.Sink == nil {
		next, ok := <-queue
		if !ok {
			last = true
			break
		}
		<-next.done
		c.accountFailure(next, written)
		if next.buf != nil {
			free <- next.buf
		}
		end = max(end, next.off+int64(next.n))
		last = next.eof || next.err != nil
	}
	if end < blockEnd {
		return "error writing "
	}
	return "writing to "
}

// accountIn adds a chunk's input records, and in bs= mode (no reblocking)
// its output records, which are the same reads written one by one.
func (c *Copier) accountIn(recs []run) {
	for _, r := range recs {
		if r.partial {
			c.R.C.InPartial.Add(r.count)
		} else {
			c.R.C.InFull.Add(r.count)
		}
		if !c.P.Reblock {
			if r.size == c.ibs {
				c.R.C.OutFull.Add(r.count)
			} else {
				c.R.C.OutPartial.Add(r.count)
			}
		}
	}
}

// accountFailure sets the counters to what dd reports when a write fails
// after written stream bytes: dd had read the records up to the one that
// completed the block it failed to write, and counts a short final write as
// a partial record only when it reblocks.
func (c *Copier) accountFailure(ch *chunk, written int64) {
	var last int64 // last stream byte dd had read
	if c.P.Reblock {
		last = (written/int64(c.obs)+1)*int64(c.obs) - 1
	} else {
		last = written
	}
	for _, r := range ch.recs {
		k := int64(0)
		if last >= r.off {
			k = min(r.count, (last-r.off)/int64(r.size)+1)
		}
		if r.partial {
			c.R.C.InPartial.Add(k)
		} else {
			c.R.C.InFull.Add(k)
		}
		if !c.P.Reblock {
			// Records written completely.
			done := min(r.count, max(written-r.off, 0)/int64(r.size))
			if r.size == c.ibs {
				c.R.C.OutFull.Add(done)
			} else {
				c.R.C.OutPartial.Add(done)
			}
		}
	}
	if c.P.Reblock {
		c.R.C.OutFull.Store(written / int64(c.obs))
		if written%int64(c.obs) != 0 {
			c.R.C.OutPartial.Store(1)
		}
	}
	c.R.C.Bytes.Store(written)
}

// writeChunk writes p, which starts at stream offset off, seeking over
// all-zero blocks with conv=sparse. It returns the bytes that landed.
func (c *Copier) writeChunk(p []byte, recs []run, off int64) (int, error) {
	if c.Sink != nil {
		return c.Sink.Write(p)
	}
	if !c.P.Sparse {
		return c.write(p)
	}
	// Sparse: dd decides per output block (obs, or per read in bs= mode).
	total := 0
	blocks := c.sparseBlocks(p, recs, off)
	i := 0
	for i < len(blocks) {
		j := i
		zero := blockdev.IsZero(p[blocks[i][0]:blocks[i][1]])
		for j+1 < len(blocks) && blockdev.IsZero(p[blocks[j+1][0]:blocks[j+1][1]]) == zero {
			j++
		}
		seg := p[blocks[i][0]:blocks[j][1]]
		if zero {
			if pos, err := c.Out.F.Seek(int64(len(seg)), io.SeekCurrent); err == nil {
				c.outOff = pos
				c.sparseSeek = true
				total += len(seg)
				i = j + 1
				continue
			}
			c.P.Sparse = false // cannot seek: dd silently writes instead
		}
		n, err := c.write(seg)
		total += n
		if err != nil {
			return total, err
		}
		i = j + 1
	}
	return total, nil
}

// sparseBlocks cuts p into the blocks dd tests for zeros: obs-sized blocks
// of the output stream, or each input record in bs= mode.
func (c *Copier) sparseBlocks(p []byte, recs []run, off int64) [][2]int {
	var out [][2]int
	if c.P.Reblock {
		for s := 0; s < len(p); {
			e := s + c.obs - int((off+int64(s))%int64(c.obs))
			e = min(e, len(p))
			out = append(out, [2]int{s, e})
			s = e
		}
		return out
	}
	for _, r := range recs {
		for k := int64(0); k < r.count; k++ {
			s := int(r.off - off + k*int64(r.size))
			out = append(out, [2]int{s, min(s+r.size, len(p))})
		}
	}
	return out
}

// write writes p at the output's current offset; the target turns O_DIRECT
// off for a write it cannot do aligned (dd does this for its final short
// block and then makes the output durable with fsync).
func (c *Copier) write(p []byte) (int, error) {
	c.sparseSeek = false
	n, err := c.Out.Write(p)
	at := c.outOff
	c.outOff += int64(n)
	if c.Out.Nocache && n > 0 {
		if c.appendMode {
			// O_APPEND wrote at the end of the file wherever the offset
			// was, a sparse seek's included (dd's holes are lost
			// likewise). Only nocache needs to know where: outOff is
			// not used after the first write otherwise, and a sparse
			// seek and finish ask lseek themselves.
			if pos, serr := c.Out.F.Seek(0, io.SeekCurrent); serr == nil {
				at, c.outOff = pos-int64(n), pos
			}
		}
		blockdev.DropCache(c.Out.F, at, int64(n))
	}
	return n, err
}

// finish extends a file that ended in a sparse seek and makes the output
// durable as asked (conv=fdatasync, conv=fsync, blkwrite's device sync).
func (c *Copier) finish() error {
	if c.Sink != nil {
		return nil
	}
	if c.sparseSeek {
		// As dd, extend the file to the offset (lseek's, which with
		// O_APPEND is the end of the last write plus the seeks after it).
		off, serr := c.Out.F.Seek(0, io.SeekCurrent)
		if fi, err := c.Out.F.Stat(); err == nil && serr == nil && fi.Mode().IsRegular() && fi.Size() < off {
			if err := c.Out.F.Truncate(off); err != nil {
				return &ddmsg.Error{Msg: "failed to truncate to " + strconv.FormatInt(off, 10) + " bytes in output file " + ddmsg.Quote(c.Out.Name), Err: err}
			}
		}
	}
	fsync := c.P.Fsync || c.Out.Fsync
	if c.P.Fdatasync || c.Out.Datasync {
		if err := c.Out.Fdatasync(); err != nil {
			if !isEINVALorENOSYS(err) {
				return err
			}
			fsync = fsync || c.P.Fdatasync
		}
	}
	if fsync {
		if err := c.Out.F.Sync(); err != nil {
			return &ddmsg.Error{Msg: "fsync failed for " + ddmsg.Quote(c.Out.Name), Err: err}
		}
	}
	if c.Out.Nocache {
		blockdev.DropCache(c.Out.F, 0, 0)
	}
	return nil
}

func isEINVALorENOSYS(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS)
}
