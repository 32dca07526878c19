package progress

import (
	"encoding/json"
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
	// Without a size the indicator walks right, then back, like pv's.
	m := Meter{Fields: FieldBar, Width: 9} // inner width 6: positions 0..3
	var pos []int
	for i := 0; i < 101; i++ {
		l := m.Line(Status{})
		pos = append(pos, strings.Index(l, "<=>")-1)
	}
	if pos[0] != 0 || pos[49] != 3 || pos[99] != 0 {
		t.Errorf("positions %v: want 0 at first, 3 at the 50th draw, 0 at the 100th", pos)
	}
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
		// pv -n without a size counts 2, 4, 6...
		{0, Status{Bytes: 5}, []string{"2\n", "4\n", "6\n"}},
	}
	for _, tt := range tests {
		m := Meter{Fields: tt.fields}
		for i, want := range tt.want {
			if got := m.Numeric(tt.s); got != want {
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
