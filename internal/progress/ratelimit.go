package progress

import (
	"sync"
	"time"
)

// Limiter holds a byte stream to a rate (pvcat -L). It keeps a virtual
// clock, next, the moment by which everything granted so far is paid for at
// the rate: a grant is made only once next has passed and moves next on by
// the grant's duration. Time lost oversleeping (a busy machine wakes the
// copier late) is kept as credit, up to a cap, so the long-run rate stays
// exact; the cap bounds what moves back to back after a pause to one
// credit plus one grant, and over any span the bytes granted are at most
// rate*span + credit + burst. The Limiter starts owing one grant, so the
// first grant comes one grant's time after the start and a transfer of N
// bytes takes N/rate.
//
// Grant and Return are concurrency-safe.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  int
	credit time.Duration
	next   time.Time
}

// NewLimiter returns a Limiter granting rate bytes per second in grants of
// at most burst bytes and keeping at most credit bytes of lost time, with
// its clock starting at now. A burst below 1 means a 20th of a second's
// worth of bytes, never less than 1 byte; a credit below 0 means one burst.
// rate must be positive. pvcat passes burst + credit = its buffer size, so
// nothing larger than one buffer moves at once.
func NewLimiter(rate int64, burst, credit int, now time.Time) *Limiter {
	if burst < 1 {
		burst = int(rate / 20)
	}
	if burst < 1 {
		burst = 1
	}
	if credit < 0 {
		credit = burst
	}
	l := &Limiter{rate: float64(rate), burst: burst}
	l.credit = l.dur(credit)
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
	if floor := now.Add(-l.credit); l.next.Before(floor) {
		l.next = floor
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
