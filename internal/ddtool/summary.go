package ddtool

import (
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/blkpipe/blkpipe/internal/progress"
)

// Summary is the one JSON object blkcat and blkwrite --json print as the
// last line on standard error, for scripts and monitoring. README.md
// ("Machine-readable summary") documents each member.
type Summary struct {
	TS     string `json:"ts"`     // when the run ended: RFC 3339, UTC, milliseconds
	Tool   string `json:"tool"`   // "blkcat" or "blkwrite"
	Result string `json:"result"` // "ok", "failed" or "interrupted"
	Error  string `json:"error,omitempty"`
	// Path is how the data went: "raw", "full" (a framed stream of all of
	// the source), "delta", "resume" or "sums".
	Path       string  `json:"path"`
	Source     string  `json:"source"`
	Target     string  `json:"target"`
	BytesIn    int64   `json:"bytes_in"`
	BytesOut   int64   `json:"bytes_out"`
	RecordsIn  Records `json:"records_in"`
	RecordsOut Records `json:"records_out"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate"` // source bytes per second
	DigestAlg  string  `json:"digest_alg,omitempty"`
	Digest     string  `json:"digest,omitempty"`   // hex
	Verified   *bool   `json:"verified,omitempty"` // blkwrite: the digest was checked
	ExitStatus int     `json:"exit_status"`

	// Source bytes and stream bytes, when they differ from the report's
	// byte count (a framed stream): set by the tool before End.
	In, Out func() int64 `json:"-"`
}

// Records are dd's record counts: whole blocks and short ones.
type Records struct {
	Full    int64 `json:"full"`
	Partial int64 `json:"partial"`
}

// End completes s for a run that ended with err, the report rep holding
// its counts, and writes it to w as the last line, after err's message,
// which it prints as Exit would (name is the program's name). It returns err marked as reported, so
// that nothing follows the line.
func (s *Summary) End(w io.Writer, name string, rep *progress.DD, err error, now time.Time) error {
	c := &rep.C
	s.TS = now.UTC().Format(progress.TimeFormat)
	s.RecordsIn = Records{c.InFull.Load(), c.InPartial.Load()}
	s.RecordsOut = Records{c.OutFull.Load(), c.OutPartial.Load()}
	s.BytesIn, s.BytesOut = c.Bytes.Load(), c.Bytes.Load()
	if s.In != nil {
		s.BytesIn = s.In()
	}
	if s.Out != nil {
		s.BytesOut = s.Out()
	}
	s.Seconds = round3(now.Sub(rep.Start).Seconds())
	if s.Seconds > 0 {
		// The report's byte count is source bytes in both tools: what
		// blkcat fed its output or sender, what blkwrite wrote to DST.
		s.Rate = round3(float64(c.Bytes.Load()) / now.Sub(rep.Start).Seconds())
	}
	s.ExitStatus = ExitCode(err)
	switch {
	case err == nil:
		s.Result = "ok"
	case errors.Is(err, ErrInterrupted):
		s.Result = "interrupted"
	default:
		s.Result = "failed"
	}
	if err != nil {
		s.Error = err.Error()
		printError(w, name, err)
		err = Reported(err)
	}
	b, jerr := json.Marshal(s)
	if jerr != nil {
		panic(jerr) // numbers, strings and a bool
	}
	w.Write(append(b, '\n'))
	return err
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}
