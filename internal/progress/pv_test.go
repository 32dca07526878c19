package progress

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0:00:00"},
		{-time.Second, "0:00:00"},
		{59*time.Second + 999*time.Millisecond, "0:00:59"},
		{3*time.Hour + 4*time.Minute + 5*time.Second, "3:04:05"},
		{49*time.Hour + 5*time.Second, "2:01:00:05"},
	}
	for _, tt := range tests {
		if got := Clock(tt.d); got != tt.want {
			t.Errorf("Clock(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestMeterLine(t *testing.T) {
	base := Status{
		Now:      time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC),
		Elapsed:  65 * time.Second,
		Bytes:    3 << 30,
		Size:     6 << 30,
		Rate:     100 << 20,
		Average:  50 << 20,
		ETA:      30 * time.Second,
		ETAKnown: true,
	}
	tests := []struct {
		name   string
		fields Fields
		width  int
		s      func(Status) Status
		want   string
	}{
		{"default", DefaultFields, 80, nil,
			" 3.0 GiB 0:01:05 [ 100 MiB/s] [==============>               ]  50% ETA 0:00:30"},
		{"narrow", DefaultFields, 60, nil,
			" 3.0 GiB 0:01:05 [ 100 MiB/s] [====>     ]  50% ETA 0:00:30"},
		{"too narrow for a bar", DefaultFields, 50, nil,
			" 3.0 GiB 0:01:05 [ 100 MiB/s]  50% ETA 0:00:30"},
		{"name average fineta", FieldName | FieldAverage | FieldFinETA | FieldBytes, 80,
			func(s Status) Status { s.Name = "data"; return s },
			"data:  3.0 GiB (  50 MiB/s) FIN 10:00:30"},
		{"unknown size", DefaultFields, 40,
			func(s Status) Status { s.Size = 0; return s },
			" 3.0 GiB 0:01:05 [ 100 MiB/s] [<=>    ]"},
		{"eta unknown", FieldETA, 80,
			func(s Status) Status { s.ETAKnown = false; return s },
			"ETA --:--:--"},
		{"bar only at 0%", FieldBar, 20,
			func(s Status) Status { s.Bytes = 0; return s },
			"[>           ]   0%"},
		{"bar only past 100%", FieldBar, 20,
			func(s Status) Status { s.Bytes = 2 * s.Size; return s },
			"[============] 200%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.s != nil {
				s = tt.s(s)
			}
			m := Meter{Fields: tt.fields, Width: tt.width}
			got := m.Line(s)
			if got != tt.want {
				t.Errorf("Line =\n%q\nwant\n%q", got, tt.want)
			}
			if len(got) >= tt.width {
				t.Errorf("line is %d columns, want < %d", len(got), tt.width)
			}
		})
	}
}

func TestMeterBounce(t *testing.T) {
	// Without a size the indicator walks right, then back, like pv's, one
	// step per drawing that follows new bytes.
	m := Meter{Fields: FieldBar, Width: 9} // inner width 6: positions 0..3
	var pos []int
	for i := 0; i < 101; i++ {
		l := m.Line(Status{Bytes: int64(i + 1)})
		pos = append(pos, strings.Index(l, "<=>")-1)
	}
	if pos[0] != 0 || pos[49] != 3 || pos[99] != 0 {
		t.Errorf("positions %v: want 0 at first, 3 at the 50th draw, 0 at the 100th", pos)
	}
	// No new bytes, no move (pv moves only while its rate is above 0).
	before := m.Line(Status{Bytes: 101})
	for i := 0; i < 30; i++ {
		if l := m.Line(Status{Bytes: 101}); l != before {
			t.Fatalf("indicator moved without new bytes: %q, then %q", before, l)
		}
	}
}

// TestMeterNumericFold checks what pv 1.6.20 prints for -n: the
// percentage p folded to 200-p above 100, with and without a size.
func TestMeterNumericFold(t *testing.T) {
	t.Run("unknown size", func(t *testing.T) {
		// pv's pretend percentage moves 2 per line and wraps below 200;
		// the printed value goes 2 … 100 … 2 0 2 and never above 100.
		m := Meter{}
		var got []string
		for i := 1; i <= 102; i++ {
			got = append(got, strings.TrimSuffix(m.Numeric(Status{Bytes: int64(i)}), "\n"))
		}
		want := func(i int) string { // 1-based line
			p := 2 * i % 200
			if p > 100 {
				p = 200 - p
			}
			return strconv.Itoa(p)
		}
		for i, g := range got {
			if g != want(i+1) {
				t.Fatalf("line %d = %s, want %s; all: %v", i+1, g, want(i+1), got)
			}
		}
		if strings.Join(got[47:53], " ") != "96 98 100 98 96 94" || strings.Join(got[97:102], " ") != "4 2 0 2 4" {
			t.Errorf("lines 48-53 %v, 98-102 %v", got[47:53], got[97:102])
		}
	})
	t.Run("stalled input", func(t *testing.T) {
		// pv 1.6.20, 1000 bytes, a pause of 1.1 s, 1000 more, -i 0.2:
		// 2 2 2 2 2 4 4 6; the final line moves on (pv's final rate is
		// the average rate), the ones without new bytes do not.
		m := Meter{}
		var got []string
		for _, n := range []int64{1000, 1000, 1000, 1000, 1000, 2000, 2000} {
			got = append(got, strings.TrimSuffix(m.Numeric(Status{Bytes: n}), "\n"))
		}
		got = append(got, strings.TrimSuffix(m.Numeric(Status{Bytes: 2000, Final: true, Done: true}), "\n"))
		if g := strings.Join(got, " "); g != "2 2 2 2 2 4 4 6" {
			t.Errorf("lines %s, want pv's 2 2 2 2 2 4 4 6", g)
		}
		// Empty input: pv -n prints 0.
		m = Meter{}
		if g := m.Numeric(Status{Final: true, Done: true}); g != "0\n" {
			t.Errorf("empty input: %q, want pv's 0", g)
		}
	})
	t.Run("past the size", func(t *testing.T) {
		// pv -n -s 500000, 100000 bytes at a time: 20 40 60 80 100 80 60
		// 40 20 0, then below 0 (pv 1.6.20 prints -100 at 3×SIZE).
		m := Meter{}
		var got []string
		for i := int64(1); i <= 15; i++ {
			got = append(got, strings.TrimSuffix(m.Numeric(Status{Bytes: i * 100000, Size: 500000}), "\n"))
		}
		if g := strings.Join(got, " "); g != "20 40 60 80 100 80 60 40 20 0 -20 -40 -60 -80 -100" {
			t.Errorf("lines %s", g)
		}
		// The timer prefix and -b are untouched.
		m = Meter{Fields: FieldTimer}
		if g := m.Numeric(Status{Elapsed: time.Second, Bytes: 150, Size: 100}); g != "1.0000 50\n" {
			t.Errorf("-nt at 150%%: %q", g)
		}
		m = Meter{Fields: FieldBytes}
		if g := m.Numeric(Status{Bytes: 150, Size: 100}); g != "150\n" {
			t.Errorf("-nb at 150%%: %q", g)
		}
	})
}

func TestMeterNumeric(t *testing.T) {
	s := Status{Elapsed: 1500 * time.Millisecond, Bytes: 12345, Size: 50000}
	tests := []struct {
		fields Fields
		s      Status
		want   []string // successive draws
	}{
		{0, s, []string{"24\n"}},
		{FieldTimer, s, []string{"1.5000 24\n"}},
		{FieldBytes, s, []string{"12345\n"}},
		{FieldTimer | FieldBytes | FieldRate, s, []string{"1.5000 12345\n"}},
		// pv -n without a size counts 2, 4, 6... while bytes arrive.
		{0, Status{Bytes: 5}, []string{"2\n", "4\n", "6\n"}},
	}
	for _, tt := range tests {
		m := Meter{Fields: tt.fields}
		for i, want := range tt.want {
			s := tt.s
			s.Bytes += int64(i) // new bytes before every line
			if got := m.Numeric(s); got != want {
				t.Errorf("fields %b draw %d: Numeric = %q, want %q", tt.fields, i, got, want)
			}
		}
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name string
		s    Status
		want string
	}{
		{"known size", Status{Elapsed: 2500 * time.Millisecond, Bytes: 250, Size: 1000, Rate: 100, Average: 100.12345,
			ETA: 7500 * time.Millisecond, ETAKnown: true},
			`{"elapsed":2.5,"bytes":250,"rate":100,"avg_rate":100.123,"size":1000,"percent":25,"eta":7.5,"done":false}`},
		{"unknown size, done, named", Status{Name: "x", Elapsed: time.Second, Bytes: 7, Done: true},
			`{"name":"x","elapsed":1,"bytes":7,"rate":0,"avg_rate":0,"size":null,"percent":null,"eta":null,"done":true}`},
	}
	for _, tt := range tests {
		got := JSON(tt.s)
		if string(got) != tt.want+"\n" {
			t.Errorf("%s: JSON =\n%s want\n%s", tt.name, got, tt.want)
		}
		var r Record
		if err := json.Unmarshal(got, &r); err != nil || r.Bytes != tt.s.Bytes {
			t.Errorf("%s: does not round-trip: %v %+v", tt.name, err, r)
		}
	}
}
