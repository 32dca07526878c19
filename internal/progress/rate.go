package progress

import "time"

// MaxETA is the longest ETA an Estimator reports; a stalled or crawling
// transfer would otherwise promise centuries.
const MaxETA = 100*time.Hour - time.Second

// settle is how close two samples may be before the later one is carried
// forward instead of recorded: a rate over a few microseconds is noise (pv
// does the same with bytes seen within 10 ms).
const settle = 10 * time.Millisecond

type sample struct {
	at    time.Time
	bytes int64
}

// Estimator turns a running byte total into a current rate, an average
// rate and an ETA. It keeps the last few samples, so the current rate is an
// average over a short history rather than over one noisy interval. Every
// method takes the time explicitly, so tests drive it with synthetic time.
//
// An Estimator is not concurrency-safe; pvcat's display goroutine owns it.
type Estimator struct {
	start   time.Time
	hist    []sample // ring of the last len(hist) samples
	n, next int      // samples held, slot for the next one
	last    sample   // newest total seen, recorded or not
}

// NewEstimator returns an Estimator whose clock starts at start, averaging
// the current rate over the last window samples (at least 2; pvcat passes
// 5, i.e. 5 s at pv's default 1 s interval).
func NewEstimator(start time.Time, window int) *Estimator {
	if window < 2 {
		window = 2
	}
	e := &Estimator{start: start, hist: make([]sample, window)}
	e.record(sample{at: start})
	return e
}

// Restart moves the start of the clock to start and forgets all samples;
// pvcat -W calls it when the first byte arrives.
func (e *Estimator) Restart(start time.Time) {
	e.start, e.n, e.next = start, 0, 0
	e.record(sample{at: start})
}

func (e *Estimator) record(s sample) {
	e.hist[e.next] = s
	e.next = (e.next + 1) % len(e.hist)
	if e.n < len(e.hist) {
		e.n++
	}
	e.last = s
}

func (e *Estimator) newest() sample {
	return e.hist[(e.next-1+len(e.hist))%len(e.hist)]
}

func (e *Estimator) oldest() sample {
	return e.hist[(e.next-e.n+len(e.hist))%len(e.hist)]
}

// Add records that total bytes have moved by now. Totals must not
// decrease. A sample within 10 ms of the previous recorded one only updates
// the total, which the next recorded sample carries forward.
func (e *Estimator) Add(now time.Time, total int64) {
	if now.Sub(e.newest().at) < settle {
		e.last = sample{at: now, bytes: total}
		return
	}
	e.record(sample{at: now, bytes: total})
}

// Elapsed returns the time from the start to now.
func (e *Estimator) Elapsed(now time.Time) time.Duration { return now.Sub(e.start) }

// Rate returns the current rate in bytes per second: the bytes moved over
// the recorded history, divided by its span. It is 0 until two samples at
// least 10 ms apart exist.
func (e *Estimator) Rate() float64 {
	o, n := e.oldest(), e.newest()
	d := n.at.Sub(o.at).Seconds()
	if e.n < 2 || d <= 0 {
		return 0
	}
	return float64(n.bytes-o.bytes) / d
}

// Average returns bytes per second over the whole transfer up to the last
// Add, or 0 before any time has passed.
func (e *Estimator) Average() float64 {
	d := e.last.at.Sub(e.start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(e.last.bytes) / d
}

// ETA returns the time left to move size bytes at the current rate (the
// average rate when the current one is 0), clamped to MaxETA. ok is false
// when size is unknown (<= 0) or nothing has moved yet. A transfer past its
// size has an ETA of 0.
func (e *Estimator) ETA(size int64) (eta time.Duration, ok bool) {
	if size <= 0 {
		return 0, false
	}
	left := size - e.last.bytes
	if left <= 0 {
		return 0, true
	}
	r := e.Rate()
	if r <= 0 {
		r = e.Average()
	}
	if r <= 0 {
		return 0, false
	}
	s := float64(left) / r
	if s >= MaxETA.Seconds() {
		return MaxETA, true
	}
	return time.Duration(s * float64(time.Second)), true
}
