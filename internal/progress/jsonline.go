package progress

import (
	"encoding/json"
	"time"
)

// TimeFormat is how JSON lines stamp their "ts": RFC 3339 in UTC with
// milliseconds, always three digits, so lines sort as text.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// JSONLine returns the line pvcat --json writes for s: JSON(s) with "ts",
// the wall-clock time ts in UTC (TimeFormat), as its first member.
func JSONLine(ts time.Time, s Status) []byte {
	rec := JSON(s) // an object: "{...}\n"
	b := make([]byte, 0, len(rec)+40)
	b = append(b, `{"ts":"`...)
	b = ts.UTC().AppendFormat(b, TimeFormat)
	b = append(b, `",`...)
	return append(b, rec[1:]...)
}

// JSONError returns the line that reports an error in a JSON stream,
// {"ts":TS,"error":MSG} and a newline, so that a reader of the stream
// never meets plain text.
func JSONError(ts time.Time, msg string) []byte {
	b, err := json.Marshal(struct {
		TS    string `json:"ts"`
		Error string `json:"error"`
	}{ts.UTC().Format(TimeFormat), msg})
	if err != nil {
		panic(err) // two strings
	}
	return append(b, '\n')
}
