package receive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
)

// ErrBase means a changed-block delta (FlagBase) names a base copy that
// is not the one blkwrite last verified on the target: the target was
// changed, restored, or missed a run. Nothing was written.
var ErrBase = errors.New("the target does not hold the stream's base")

// checkBase refuses, before anything is written, a changed-block delta
// whose base is not the copy recorded as last verified on the target
// (size, digest, and the identity of what was written: a file written
// since by anything else no longer matches). With no record at all it
// can only say so: the delta's digest, checked by reading back the
// blocks it leaves out, still refuses a wrong base, but after writing.
func checkBase(opt Options, t *sink, h frame.Header, rep *progress.DD) error {
	if !h.Base() || t.F == nil {
		return nil
	}
	want := fmt.Sprintf("%d bytes with %v %s", h.BaseSize, h.DigestAlg, hex.EncodeToString(h.BaseDigest[:]))
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s; the changed-block delta was made against %s; nothing was written: run a sums delta (blkcat --against) or a full copy",
			ErrBase, why, want)
	}
	c, err := opt.State.LoadCopy(opt.Ops.Of)
	if errors.Is(err, os.ErrNotExist) {
		if opt.NoVerify {
			return refuse(fmt.Sprintf("no verified copy of %s is recorded, and with --no-verify nothing would check it", ddmsg.Quote(t.Name)))
		}
		rep.Note(fmt.Sprintf("no verified copy of %s is recorded: the delta's base (%s) is checked only after writing, by reading back the blocks it leaves out", ddmsg.Quote(t.Name), want))
		return nil
	}
	if err != nil {
		return refuse(err.Error())
	}
	id, err := state.Identify(t.F)
	switch {
	case err != nil:
		return refuse(err.Error())
	case c.Alg != h.DigestAlg.String() || c.Size != h.BaseSize || c.Digest != hex.EncodeToString(h.BaseDigest[:]):
		return refuse(fmt.Sprintf("%s holds %d bytes with %s %s, verified %s", ddmsg.Quote(t.Name), c.Size, c.Alg, c.Digest, c.Time.UTC().Format(time.RFC3339)))
	case !c.Same(id):
		return refuse(fmt.Sprintf("%s was written, replaced or restored since its copy of %s %s was verified %s", ddmsg.Quote(t.Name), c.Alg, c.Digest, c.Time.UTC().Format(time.RFC3339)))
	}
	return nil
}
