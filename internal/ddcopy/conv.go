package ddcopy

import (
	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"context"
	"io"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/progress"
)

// textCopy is dd's dd_copy loop with separate input and output buffers,
// which the text conversions (conv=ascii, ebcdic, ibm, lcase, ucase, swab,
// block, unblock) need: each read is one record, translated, byte-swapped
// and blocked or unblocked in that order, then gathered into obs-sized
// writes. It reads and writes one record at a time, without the engine's
// read-ahead, O_DIRECT chunks or lent buffers, so no fast path can skip a
// conversion; text conversions are for scripts, not for disk images.
type textCopy struct {
	c        *Copier
	text     ddargs.Text
	table    [256]byte
	newline  byte
	space    byte
	obuf     []byte
	oc       int   // bytes in obuf
	col      int64 // column in the current line or record (block, unblock)
	spaces   int64 // unblock: spaces not yet known to be trailing
	saved    byte  // swab: the odd byte of the last read, carried to the next
	hasSaved bool
}

// runText copies with dd's text conversions. It is Run's path when
// c.P.Text has any in force.
func (c *Copier) runText(ctx context.Context) error {
	c.ibs, c.obs = c.P.IBS, c.P.OBS
	c.warn = false // dd warns of partial reads only without separate buffers
	if c.In.Direct && !c.In.UserDirect && blockdev.SetDirect(c.In.F, false) == nil {
		// Reads of ibs bytes, as dd's: the tool's own O_DIRECT would
		// refuse them unless aligned.
		c.In.Direct = false
	}
	if c.Out.Direct && !c.Out.UserDirect && blockdev.SetDirect(c.Out.F, false) == nil {
		c.Out.Direct = false
	}
	start, err := c.skipSeek()
	if err != nil {
		return err
	}
	if c.P.Count == 0 && c.P.CountTail == 0 {
		return c.discardAtEOF(c.finish())
	}
	// Records are read at lead, aligned for O_DIRECT; the byte before is
	// room for the one swab carries over.
	lead := 1
	if c.In.Direct {
		lead = max(c.In.Align, 512)
	}
	ibufs, releaseIn, err := mapBuffers(1, c.ibs+lead, max(lead, 1))
	if err != nil {
		return memoryError("input", c.ibs)
	}
	defer releaseIn()
	obufs, releaseOut, err := mapBuffers(1, c.obs, 1)
	if err != nil {
		return memoryError("output", c.obs)
	}
	defer releaseOut()
	t := &textCopy{c: c, text: c.P.Text, table: c.P.Text.Table(),
		newline: c.P.Text.Newline(), space: c.P.Text.Space(), obuf: obufs[0]}
	rerr := t.copy(ctx, ibufs[0][lead-1:], start)
	if werr := t.flush(); werr != nil {
		return werr
	}
	if rerr != nil {
		return rerr
	}
	if c.In.Nocache {
		blockdev.DropCache(c.In.F, 0, 0)
	}
	return c.finish()
}

// skipSeek skips the input and seeks the output (not a Sink) as dd does
// before it copies, and returns the input's offset after the skip.
func (c *Copier) skipSeek() (int64, error) {
	start, err := c.skipInput()
	if err != nil {
		return 0, err
	}
	if c.Sink == nil {
		if err := c.seekOutput(); err != nil {
			return 0, err
		}
	}
	return start, nil
}

// copy reads records into ibuf[1:] (ibuf[0] is room for a byte swab
// carries over) and converts them into t.obuf until the input ends, count=
// is reached, or an error. off is the input's offset after skip=.
func (t *textCopy) copy(ctx context.Context, ibuf []byte, off int64) error {
	c := t.c
	pad := byte(0)
	if t.text.Block || t.text.Unblock {
		pad = ' ' // before translation, as dd pads
	}
	var records int64
	partread := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.R.Tick(time.Now()) // dd's status=progress check, before each read
		if c.P.Count >= 0 && records >= c.P.Count+min(c.P.CountTail, 1) {
			return nil
		}
		rec := ibuf[1 : 1+c.ibs]
		if c.P.Sync && c.P.Noerror {
			fill(rec, pad)
		}
		size := c.ibs
		if c.P.Count >= 0 && records >= c.P.Count {
			size = int(c.P.CountTail)
		}
		n, err := c.readOnce(rec[:size], 0)
		if err == io.EOF && n > 0 {
			err = nil // the next read finds the end again
		}
		if err != nil && err != io.EOF {
			e := &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(c.In.Name), Err: err}
			if !c.P.Noerror {
				return e
			}
			if c.R.Level != progress.LevelNone {
				c.R.Diagnose(e.Error())
			}
			c.R.Report(time.Now())
			bad := c.ibs - partread
			if c.In.Seekable {
				off += int64(bad)
				c.In.F.Seek(off, io.SeekStart)
			}
			if !c.P.Sync || partread != 0 {
				continue
			}
			n = 0 // a record of padding stands for the lost one
		} else if n == 0 {
			return nil
		}
		off += int64(n)
		if n < c.ibs {
			c.R.C.InPartial.Add(1)
			partread = n
			if c.P.Sync {
				if !c.P.Noerror {
					fill(rec[n:], pad)
				}
				n = c.ibs
			}
		} else {
			c.R.C.InFull.Add(1)
			partread = 0
		}
		records++
		if err := t.convert(ibuf, n); err != nil {
			return err
		}
	}
}

// convert applies the conversions to the record in ibuf[1:1+n].
func (t *textCopy) convert(ibuf []byte, n int) error {
	buf := ibuf[1 : 1+n]
	if t.text.Translates() {
		for i, b := range buf {
			buf[i] = t.table[b]
		}
	}
	if t.text.Swab {
		if t.hasSaved {
			ibuf[0] = t.saved
			buf = ibuf[:1+n]
			t.hasSaved = false
		}
		if len(buf)%2 == 1 {
			t.saved, t.hasSaved = buf[len(buf)-1], true
			buf = buf[:len(buf)-1]
		}
		for i := 0; i+1 < len(buf); i += 2 {
			buf[i], buf[i+1] = buf[i+1], buf[i]
		}
	}
	return t.emit(buf)
}

// emit passes converted bytes to the output, blocking or unblocking them.
func (t *textCopy) emit(buf []byte) error {
	cbs := t.text.CBS
	switch {
	case t.text.Block:
		// Newline-terminated lines become records of cbs bytes, padded
		// with spaces; the bytes of a longer line after cbs are dropped
		// and the line counted as a truncated record.
		for _, b := range buf {
			if b == t.newline {
				for ; t.col < cbs; t.col++ {
					if err := t.put(t.space); err != nil {
						return err
					}
				}
				t.col = 0
				continue
			}
			if t.col == cbs {
				t.c.R.C.Truncated.Add(1)
			} else if t.col < cbs {
				if err := t.put(b); err != nil {
					return err
				}
			}
			t.col++
		}
	case t.text.Unblock:
		// Records of cbs bytes become lines, their trailing spaces
		// dropped.
		for i := 0; i < len(buf); i++ {
			b := buf[i]
			t.col++
			switch {
			case t.col > cbs:
				t.col, t.spaces = 0, 0
				i-- // the byte starts the next record
				if err := t.put(t.newline); err != nil {
					return err
				}
			case b == t.space:
				t.spaces++
			default:
				for ; t.spaces > 0; t.spaces-- {
					if err := t.put(t.space); err != nil {
						return err
					}
				}
				if err := t.put(b); err != nil {
					return err
				}
			}
		}
	default:
		for len(buf) > 0 {
			k := copy(t.obuf[t.oc:], buf)
			t.oc += k
			buf = buf[k:]
			if t.oc == len(t.obuf) {
				if err := t.writeBlock(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// put is dd's output_char.
func (t *textCopy) put(b byte) error {
	t.obuf[t.oc] = b
	t.oc++
	if t.oc == len(t.obuf) {
		return t.writeBlock()
	}
	return nil
}

// writeBlock is dd's write_output: a full obs block.
func (t *textCopy) writeBlock() error {
	c := t.c
	n, err := c.textWrite(t.obuf)
	c.R.C.Bytes.Add(int64(n))
	t.oc = 0
	if err != nil || n != len(t.obuf) {
		return &ddmsg.Error{Msg: "writing to " + ddmsg.Quote(c.Out.Name), Err: shortWrite(err)}
	}
	c.R.C.OutFull.Add(1)
	return nil
}

// flush ends the conversion as dd does after its loop: the byte swab
// kept, the last block padded or the last line ended, and the last,
// short output block written.
func (t *textCopy) flush() error {
	if t.hasSaved {
		t.hasSaved = false
		if err := t.emit([]byte{t.saved}); err != nil {
			return err
		}
	}
	if t.text.Block && t.col > 0 {
		for ; t.col < t.text.CBS; t.col++ {
			if err := t.put(t.space); err != nil {
				return err
			}
		}
	}
	if t.text.Unblock && t.col > 0 {
		if err := t.put(t.newline); err != nil {
			return err
		}
	}
	if t.oc == 0 {
		return nil
	}
	c := t.c
	n, err := c.textWrite(t.obuf[:t.oc])
	c.R.C.Bytes.Add(int64(n))
	if n > 0 {
		c.R.C.OutPartial.Add(1)
	}
	if err != nil || n != t.oc {
		return &ddmsg.Error{Msg: "error writing " + ddmsg.Quote(c.Out.Name), Err: shortWrite(err)}
	}
	t.oc = 0
	return nil
}

// textWrite is dd's iwrite: an all-zero block becomes a seek with
// conv=sparse, and a short block is written without O_DIRECT (and the
// output then fsynced), as dd turns it off for its final block.
func (c *Copier) textWrite(p []byte) (int, error) {
	if c.Sink != nil {
		return c.Sink.Write(p)
	}
	if c.Out.Direct && len(p) < c.obs && blockdev.SetDirect(c.Out.F, false) == nil {
		c.Out.Direct = false
		c.P.Fsync = true
	}
	c.sparseSeek = false
	if c.P.Sparse && blockdev.IsZero(p) {
		if _, err := c.Out.F.Seek(int64(len(p)), io.SeekCurrent); err == nil {
			c.sparseSeek = true
			return len(p), nil
		}
		c.P.Sparse = false
	}
	return c.Out.F.Write(p)
}

// shortWrite is the cause of a write that returned less than asked.
func shortWrite(err error) error {
	if err == nil {
		return io.ErrShortWrite
	}
	return err
}

func fill(p []byte, b byte) {
	for i := range p {
		p[i] = b
	}
}
