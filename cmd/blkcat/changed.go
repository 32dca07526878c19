package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/pipeio"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/send"
	"github.com/blkpipe/blkpipe/internal/state"
)

// sendChanged is blkcat --changed-from BASE SNAP. It ends with one line
// saying what it read and sent, which scripts/replicate.sh reports:
//
//	blkcat: changed blocks: listed N bytes, read N bytes, sent N bytes (N blocks of 4 KiB), blake3 ROOT
func sendChanged(ctx context.Context, opt send.Options, in *ddcopy.Input, out *ddcopy.Output, rep *progress.DD, dir state.Dir) error {
	rep.Restart(time.Now())
	// The receiver gets its end of file with END, not after blkcat has
	// kept SNAP's map and sums (written and synced).
	opt.Ended = func() {
		if err := pipeio.Detach(out.F); err != nil {
			rep.Note(fmt.Sprintf("could not end the output before keeping the leaf map: %v", err))
		}
	}
	st, err := send.Changed(ctx, opt, in, out.F, rep, dir)
	if errors.Is(err, send.ErrNoBase) {
		return fmt.Errorf("%w; nothing was sent", err)
	}
	if err == ddtool.ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if err != nil {
		return err
	}
	rep.Report(time.Now())
	rep.Diagnose(fmt.Sprintf("changed blocks: listed %d bytes, read %d bytes, sent %d bytes (%d blocks of 4 KiB), blake3 %s",
		st.Listed, st.Read, st.Sent, st.Blocks, hex.EncodeToString(st.Root[:])))
	return nil
}

// nonEmpty is a flag that takes a value that may not be empty.
func nonEmpty(dst *string, msg string) func(string) error {
	return func(v string) error {
		*dst = v
		if v == "" {
			return cli.Usagef("%s", msg)
		}
		return nil
	}
}
