package progress

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestEstimator(t *testing.T) {
	e := NewEstimator(t0, 3)
	if r := e.Rate(); r != 0 {
		t.Fatalf("Rate before samples = %v, want 0", r)
	}
	if _, ok := e.ETA(1000); ok {
		t.Fatal("ETA known before anything moved")
	}
	// 100 B/s for 3 s, then 300 B/s.
	for i := 1; i <= 3; i++ {
		e.Add(t0.Add(time.Duration(i)*time.Second), int64(100*i))
	}
	if r := e.Rate(); r != 100 {
		t.Errorf("Rate = %v, want 100", r)
	}
	e.Add(t0.Add(4*time.Second), 600)
	e.Add(t0.Add(5*time.Second), 900)
	// History of 3 samples: t=3 (300) .. t=5 (900): 300 B/s.
	if r := e.Rate(); r != 300 {
		t.Errorf("Rate over the last 3 samples = %v, want 300", r)
	}
	if a := e.Average(); a != 180 {
		t.Errorf("Average = %v, want 180", a)
	}
	if eta, ok := e.ETA(1500); !ok || eta != 2*time.Second {
		t.Errorf("ETA(1500) = %v, %v; want 2s, true", eta, ok)
	}
	if eta, ok := e.ETA(800); !ok || eta != 0 {
		t.Errorf("ETA past the size = %v, %v; want 0, true", eta, ok)
	}
	if _, ok := e.ETA(0); ok {
		t.Error("ETA known without a size")
	}
	if eta, _ := e.ETA(1 << 62); eta != MaxETA {
		t.Errorf("ETA for a huge size = %v, want clamped to %v", eta, MaxETA)
	}
}

func TestEstimatorCarriesCloseSamples(t *testing.T) {
	e := NewEstimator(t0, 5)
	e.Add(t0.Add(time.Second), 1000)
	// 1 ms later: not a sample of its own (the rate over 1 ms is noise),
	// but its bytes count from the next sample on.
	e.Add(t0.Add(time.Second+time.Millisecond), 5000)
	if r := e.Rate(); r != 1000 {
		t.Errorf("Rate = %v, want 1000 (close sample carried, not recorded)", r)
	}
	if a := e.Average(); a < 4990 || a > 5000 {
		t.Errorf("Average = %v, want about 4995 (includes carried bytes)", a)
	}
	e.Add(t0.Add(2*time.Second), 6000)
	if r := e.Rate(); r != 3000 {
		t.Errorf("Rate = %v, want 3000", r)
	}
	e.Restart(t0.Add(10 * time.Second))
	if r, a := e.Rate(), e.Average(); r != 0 || a != 0 {
		t.Errorf("after Restart Rate, Average = %v, %v; want 0, 0", r, a)
	}
}

// simulate runs a reader that asks a Limiter for chunk bytes whenever it
// may, over span of synthetic time, sleeping exactly as long as told plus
// oversleep, and returns the bytes granted and the largest grant.
func simulate(l *Limiter, start time.Time, span, oversleep time.Duration, chunk int, pauseAt, pause time.Duration) (total int64, largest int) {
	now := start
	paused := false
	for now.Sub(start) < span {
		if !paused && pause > 0 && now.Sub(start) >= pauseAt {
			now = now.Add(pause)
			paused = true
		}
		n, wait := l.Grant(now, chunk)
		if n > 0 {
			total += int64(n)
			largest = max(largest, n)
			continue
		}
		now = now.Add(wait + oversleep)
	}
	return total, largest
}

func TestLimiterRate(t *testing.T) {
	tests := []struct {
		name      string
		rate      int64
		burst     int
		chunk     int
		oversleep time.Duration
	}{
		{"exact sleeps", 1 << 20, 0, 1 << 20, 0},
		{"oversleep 1ms", 1 << 20, 0, 1 << 20, time.Millisecond},
		{"oversleep 7ms", 10 << 20, 0, 1 << 20, 7 * time.Millisecond},
		{"small chunks", 1000, 0, 10, 100 * time.Microsecond},
		{"tiny rate", 3, 0, 1 << 20, time.Millisecond},
		{"burst below chunk", 50 << 20, 256 << 10, 1 << 20, 2 * time.Millisecond},
		{"late wakeups", 2 << 20, 0, 1 << 20, 80 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Credit as pvcat gives it: one 1 MiB buffer less a grant.
			l := NewLimiter(tt.rate, tt.burst, max(1<<20-tt.burst, 0), t0)
			span := 10 * time.Second
			total, largest := simulate(l, t0, span, tt.oversleep, tt.chunk, 0, 0)
			want := float64(tt.rate) * span.Seconds()
			if got := float64(total); got < want*0.99-float64(l.Burst()) || got > want+float64(l.Burst()) {
				t.Errorf("granted %d bytes in %v, want %.0f ±1%%", total, span, want)
			}
			if largest > l.Burst() {
				t.Errorf("largest grant %d > burst %d", largest, l.Burst())
			}
		})
	}
}

func TestLimiterPauseNoCatchUp(t *testing.T) {
	const rate = 1 << 20
	l := NewLimiter(rate, 0, -1, t0)
	// Pause 5 s after 1 s: no saved-up credit beyond one burst.
	now := t0.Add(6 * time.Second)
	simulate(l, t0, time.Second, 0, 1<<20, 0, 0)
	var back int
	for {
		n, _ := l.Grant(now, 1<<20)
		if n == 0 {
			break
		}
		back += n
	}
	if back > 2*l.Burst() {
		t.Errorf("after a pause %d bytes granted at once, want <= 2 bursts (%d)", back, 2*l.Burst())
	}
}

func TestLimiterReturn(t *testing.T) {
	l := NewLimiter(1000, 100, 0, t0)
	if n, w := l.Grant(t0, 100); n != 0 || w != 100*time.Millisecond {
		t.Fatalf("Grant on an empty limiter = %d, %v; want 0, 100ms", n, w)
	}
	if n, w := l.Grant(t0.Add(99*time.Millisecond), 100); n != 0 || w != time.Millisecond {
		t.Fatalf("Grant at 99ms = %d, %v; want 0, 1ms", n, w)
	}
	now := t0.Add(100 * time.Millisecond)
	if n, _ := l.Grant(now, 500); n != 100 {
		t.Fatalf("Grant = %d, want one burst (100)", n)
	}
	if n, w := l.Grant(now, 100); n != 0 || w != 100*time.Millisecond {
		t.Fatalf("Grant right after = %d, %v; want 0, 100ms", n, w)
	}
	l.Return(100) // nothing moved
	if n, _ := l.Grant(now, 40); n != 40 {
		t.Fatalf("Grant after Return = %d, want 40", n)
	}
	if n, w := l.Grant(now, 0); n != 0 || w != 0 {
		t.Fatalf("Grant(0) = %d, %v", n, w)
	}
}
