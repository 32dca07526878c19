package progress

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Fields selects what pvcat's display shows, one bit per pv flag.
type Fields uint

// The fields of pv's display, in the order pv draws them.
const (
	FieldName    Fields = 1 << iota // -N NAME, drawn as "NAME: "
	FieldBytes                      // -b: bytes moved so far
	FieldTimer                      // -t: elapsed time
	FieldRate                       // -r: current rate
	FieldAverage                    // -a: average rate
	FieldBar                        // -p: bar and percentage
	FieldETA                        // -e: time left
	FieldFinETA                     // -I: clock time the transfer should end

	// DefaultFields is what pv shows without field flags: -pterb.
	DefaultFields = FieldBar | FieldTimer | FieldETA | FieldRate | FieldBytes
)

// Status is one snapshot of a transfer.
type Status struct {
	Name     string        // -N, may be empty
	Now      time.Time     // wall clock of the snapshot (for -I)
	Elapsed  time.Duration // since the clock started
	Bytes    int64         // moved so far
	Size     int64         // expected total; 0 when unknown
	Rate     float64       // current bytes per second
	Average  float64       // bytes per second since the start
	ETA      time.Duration // time left, valid when ETAKnown
	ETAKnown bool
	Done     bool // the transfer completed (the last snapshot of a full copy)
	Final    bool // the last snapshot, drawn once at the end, completed or not
}

// Percent returns Bytes as a whole percentage of Size, as pv computes it
// (it may exceed 100), and false when the size is unknown.
func (s Status) Percent() (int64, bool) {
	if s.Size <= 0 {
		return 0, false
	}
	return s.Bytes * 100 / s.Size, true
}

// Meter draws pv-style displays. It is stateful the way pv is: without a
// known size, every drawing that follows new bytes moves pv's pretend
// percentage on by 2, from 0 to 198 and round again, which the bar draws as
// a "<=>" bouncing between its ends and pv -n prints as 2 … 100 … 2 0 2 ….
//
// A Meter is not concurrency-safe.
type Meter struct {
	Fields Fields
	Width  int   // terminal columns; 80 when 0
	tick   int64 // pv's unknown-size percentage: 0..198
	seen   int64 // Bytes at the previous drawing
}

// advance moves the unknown-size percentage on for the drawing of s. As in
// pv 1.6.20 (display.c), it moves only when the rate is above 0: when
// bytes arrived since the previous drawing, or, for the final drawing, where
// pv takes the average rate, when any byte arrived at all.
func (m *Meter) advance(s Status) {
	if s.Bytes > m.seen || s.Final && s.Bytes > 0 {
		m.tick += 2
		if m.tick > 199 {
			m.tick = 0
		}
	}
	m.seen = s.Bytes
}

// percent returns the percentage for the drawing of s: Bytes over Size
// (past 100 when the input outgrows the size), or without a size pv's
// pretend percentage, 0..198. known reports whether the size is known.
func (m *Meter) percent(s Status) (p int64, known bool) {
	if p, ok := s.Percent(); ok {
		return p, true
	}
	m.advance(s)
	return m.tick, false
}

// Numeric returns the line pv -n prints for s, newline included: the
// elapsed seconds with 4 decimals if FieldTimer is set, then the bytes if
// FieldBytes is set, else the percentage. pv folds a percentage p above 100
// back to 200-p, for dialog --gauge and the like, so without a size the
// numbers go 2 4 … 98 100 98 … 2 0 2 … (one step per line that follows new
// bytes), and with a size they come back down once the input outgrows it:
// 100 at SIZE bytes, 50 at 1.5×SIZE, 0 at twice SIZE and, as in pv,
// negative beyond.
func (m *Meter) Numeric(s Status) string {
	var b strings.Builder
	if m.Fields&FieldTimer != 0 {
		fmt.Fprintf(&b, "%.4f ", s.Elapsed.Seconds())
	}
	p, _ := m.percent(s)
	if m.Fields&FieldBytes != 0 {
		b.WriteString(strconv.FormatInt(s.Bytes, 10))
	} else {
		b.WriteString(strconv.FormatInt(fold(p), 10))
	}
	b.WriteByte('\n')
	return b.String()
}

// fold maps pv's percentage to what pv -n prints: p up to 100, 200-p above.
func fold(p int64) int64 {
	if p > 100 {
		return 200 - p
	}
	return p
}

// Line returns the one-line display for s without "\r" or newline, at most
// Width columns wide: name, bytes, timer, rate, average, bar with percent,
// ETA, finish time, in pv's order, sizes in IEC units (go-humanize).
func (m *Meter) Line(s Status) string {
	width := m.Width
	if width <= 0 {
		width = 80
	}
	var parts []string
	if m.Fields&FieldName != 0 && s.Name != "" {
		parts = append(parts, s.Name+":")
	}
	if m.Fields&FieldBytes != 0 {
		parts = append(parts, fmt.Sprintf("%8s", humanize.IBytes(uint64(s.Bytes))))
	}
	if m.Fields&FieldTimer != 0 {
		parts = append(parts, Clock(s.Elapsed))
	}
	if m.Fields&FieldRate != 0 {
		parts = append(parts, "["+rate(s.Rate)+"]")
	}
	if m.Fields&FieldAverage != 0 {
		parts = append(parts, "("+rate(s.Average)+")")
	}
	barAt := len(parts)
	var tail []string
	// The bar shows the true percentage, 150% past the size, as pv's does.
	pct, known := m.percent(s)
	if m.Fields&FieldBar != 0 && known {
		tail = append(tail, fmt.Sprintf("%3d%%", pct))
	}
	if m.Fields&FieldETA != 0 && known {
		eta := "--:--:--"
		if s.ETAKnown {
			eta = Clock(s.ETA)
		}
		tail = append(tail, "ETA "+eta)
	}
	if m.Fields&FieldFinETA != 0 && known {
		fin := "--:--:--"
		if s.ETAKnown {
			fin = s.Now.Add(s.ETA).Format("15:04:05")
		}
		tail = append(tail, "FIN "+fin)
	}
	if m.Fields&FieldBar != 0 {
		others := len(strings.Join(append(parts[:barAt:barAt], tail...), " "))
		inner := width - 1 - others - 2 // last column stays free: no wrap
		if others > 0 {
			inner-- // the space before or after the bar
		}
		if inner >= 3 {
			parts = append(parts, "["+m.bar(inner, pct, known)+"]")
		}
	}
	line := strings.Join(append(parts, tail...), " ")
	if len(line) > width-1 {
		line = line[:max(width-1, 0)]
	}
	return line
}

// bar draws the inside of the bar, inner columns wide: "====>   " for a
// known size, else the "<=>" at pct, pv's unknown-size percentage folded.
func (m *Meter) bar(inner int, pct int64, known bool) string {
	if !known {
		at := (inner - 3) * int(fold(pct)) / 100
		return strings.Repeat(" ", at) + "<=>" + strings.Repeat(" ", inner-3-at)
	}
	fill := int(min(max(pct, 0), 100)) * inner / 100
	if fill >= inner {
		return strings.Repeat("=", inner)
	}
	if fill == 0 {
		return ">" + strings.Repeat(" ", inner-1)
	}
	return strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", inner-fill)
}

func rate(r float64) string {
	return fmt.Sprintf("%10s", humanize.IBytes(uint64(max(r, 0)))+"/s")
}

// Clock formats d as pv does: H:MM:SS, and D:HH:MM:SS from a day on.
func Clock(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	h, m, sec := s/3600, s/60%60, s%60
	if h >= 24 {
		return fmt.Sprintf("%d:%02d:%02d:%02d", h/24, h%24, m, sec)
	}
	return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
}

// Record is the JSON object pvcat --json writes per interval and at the
// end. Unknown values (size, percent, eta without a size) are null. Rates
// are bytes per second, times seconds.
type Record struct {
	Name    string   `json:"name,omitempty"`
	Elapsed float64  `json:"elapsed"`
	Bytes   int64    `json:"bytes"`
	Rate    float64  `json:"rate"`
	Average float64  `json:"avg_rate"`
	Size    *int64   `json:"size"`
	Percent *float64 `json:"percent"`
	ETA     *float64 `json:"eta"`
	Done    bool     `json:"done"`
}

// JSON returns s as one line of JSON, newline included.
func JSON(s Status) []byte {
	r := Record{
		Name:    s.Name,
		Elapsed: round3(s.Elapsed.Seconds()),
		Bytes:   s.Bytes,
		Rate:    round3(s.Rate),
		Average: round3(s.Average),
		Done:    s.Done,
	}
	if s.Size > 0 {
		size := s.Size
		pct := round3(float64(s.Bytes) * 100 / float64(s.Size))
		r.Size, r.Percent = &size, &pct
		if s.ETAKnown {
			eta := round3(s.ETA.Seconds())
			r.ETA = &eta
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // Record holds only numbers, a string and a bool
	}
	return append(b, '\n')
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}
