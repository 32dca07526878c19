package receive

import (
	"encoding/hex"

	"github.com/blkpipe/blkpipe/internal/frame"
)

// Result is what Framed found out about the stream it applied, for
// blkwrite --json. A nil *Result records nothing.
type Result struct {
	Path      string // "full", "delta" or "resume"
	DigestAlg string // of END's whole-source digest
	Digest    string // hex; empty unless the stream ended well
	Verified  bool   // the digest was checked against what DST holds
}

// header notes the kind of stream h starts.
func (r *Result) header(h frame.Header) {
	if r == nil {
		return
	}
	switch {
	case h.Delta():
		r.Path = "delta"
	case h.StartOffset != 0:
		r.Path = "resume"
	default:
		r.Path = "full"
	}
	r.DigestAlg = h.DigestAlg.String()
}

// end notes the digest END carried.
func (r *Result) end(end frame.Record) {
	if r == nil {
		return
	}
	r.Digest, r.Verified = hex.EncodeToString(end.Digest[:]), end.Verified
}
