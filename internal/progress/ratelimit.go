package progress

import (
	"sync"
	"time"
)

// Limiter holds a byte stream to a rate (pvcat -L). It keeps a virtual
// clock, next, the moment by which everything granted so far is paid for at
// the rate: a grant is made only once next has passed and moves next on by
// the grant's duration. Time lost oversleeping is kept as credit, at most
// one burst, so the long-run rate stays exact; because of that cap, a
// stream that pauses can afterwards move at most two bursts back to back,
// and over any span the bytes granted are at most rate*span + 2*burst. The
// Limiter starts owing one burst, so the first grant comes one burst's time
// after the start and from the start on the bytes granted never exceed
// rate*elapsed: a transfer of N bytes takes N/rate.
//
// Grant and Return are concurrency-safe.
type Limiter struct {
	mu    sync.Mutex
	rate  float64 // bytes per second
	burst int
	next  time.Time
}

// NewLimiter returns a Limiter granting rate bytes per second in grants of
// at most burst bytes, with its clock starting at now. A burst below 1 means
// a 20th of a second's worth of bytes, never less than 1 byte. rate must be
// positive.
func NewLimiter(rate int64, burst int, now time.Time) *Limiter {
	if burst < 1 {
		burst = int(rate / 20)
	}
	if burst < 1 {
		burst = 1
	}
	l := &Limiter{rate: float64(rate), burst: burst}
	l.next = now.Add(l.dur(burst))
	return l
}

// Burst returns the largest grant the Limiter makes.
func (l *Limiter) Burst() int { return l.burst }

func (l *Limiter) dur(n int) time.Duration {
	return time.Duration(float64(n) / l.rate * float64(time.Second))
}

// Grant asks to move want bytes at now. It returns how many may move (at
// most want and at most one burst), or 0 and how long to wait before asking
// again. Granted bytes count as moved; give back any that did not with
// Return.
func (l *Limiter) Grant(now time.Time, want int) (n int, wait time.Duration) {
	if want <= 0 {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next.After(now) {
		return 0, l.next.Sub(now)
	}
	if floor := now.Add(-l.dur(l.burst)); l.next.Before(floor) {
		l.next = floor // credit capped at one burst
	}
	n = min(want, l.burst)
	l.next = l.next.Add(l.dur(n))
	return n, 0
}

// Return gives back n granted bytes that did not move.
func (l *Limiter) Return(n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	l.next = l.next.Add(-l.dur(n))
	l.mu.Unlock()
}

// Wait blocks until some of want bytes may move by the wall clock and
// returns how many (1..min(want, burst); 0 only for want <= 0). It
// implements pipeio.Throttle.
func (l *Limiter) Wait(want int) int {
	for {
		n, d := l.Grant(time.Now(), want)
		if n > 0 || want <= 0 {
			return n
		}
		time.Sleep(d)
	}
}
