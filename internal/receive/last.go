package receive

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/state"
)

// Last is blkwrite --last DST: it prints what dir records as the last
// verified copy on of, in one line (or a JSON object with asJSON):
//
//	verified blake3 HEX size N at RFC3339 stream ID target PATH
//
// It fails when there is no record, when it is damaged, or when of is no
// longer the file or device it was written to (or, for a file, was
// modified since).
func Last(dir state.Dir, of string, asJSON bool, stdout io.Writer) error {
	if of == "" {
		return ddtool.Usage("--last needs the target (blkwrite --last DST)")
	}
	c, err := dir.LoadCopy(of)
	if err != nil {
		return noRecord(err, "no verified copy is recorded for", of, dir.CopyPath(of))
	}
	f, err := os.Open(of)
	if err != nil {
		return &ddmsg.Error{Msg: "failed to open " + ddmsg.Quote(of), Err: err}
	}
	defer f.Close()
	id, err := state.Identify(f)
	if err != nil {
		return err
	}
	if !c.Same(id) {
		return fmt.Errorf("the target was changed since: %s is not the file or device the copy of %s %s was verified on (or was written since)", ddmsg.Quote(of), c.Alg, c.Digest)
	}
	if asJSON {
		b, err := json.Marshal(struct {
			Verified bool   `json:"verified"`
			Alg      string `json:"alg"`
			Digest   string `json:"digest"`
			Size     int64  `json:"size"`
			Time     string `json:"time"`
			Stream   string `json:"stream"`
			Target   string `json:"target"`
			Map      bool   `json:"map"`
			Sums     bool   `json:"sums"`
		}{true, c.Alg, c.Digest, c.Size, c.Time.UTC().Format(time.RFC3339), c.StreamID, c.Target, c.Alg == "blake3", c.Sums != ""})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintf(stdout, "verified %s %s size %d at %s stream %s target %s\n",
		c.Alg, c.Digest, c.Size, c.Time.UTC().Format(time.RFC3339), c.StreamID, c.Target)
	return err
}
