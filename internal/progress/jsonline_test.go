package progress

import (
	"encoding/json"
	"testing"
	"time"
)

func TestJSONLine(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		ts   time.Time
		s    Status
		want string
	}{
		{"sized", time.Date(2026, 12, 7, 1, 2, 3, 450_000_000, paris),
			Status{Name: "n", Elapsed: 2 * time.Second, Bytes: 5, Size: 10, Rate: 2.5, Average: 2.5, ETA: 2 * time.Second, ETAKnown: true},
			`{"ts":"2026-12-07T00:02:03.450Z","name":"n","elapsed":2,"bytes":5,"rate":2.5,"avg_rate":2.5,"size":10,"percent":50,"eta":2,"done":false}` + "\n"},
		{"whole second", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Status{Bytes: 1, Done: true},
			`{"ts":"2026-01-02T03:04:05.000Z","elapsed":0,"bytes":1,"rate":0,"avg_rate":0,"size":null,"percent":null,"eta":null,"done":true}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(JSONLine(tc.ts, tc.s))
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatal(err)
			}
			if _, err := time.Parse(time.RFC3339Nano, m["ts"].(string)); err != nil {
				t.Fatalf("ts: %v", err)
			}
		})
	}
}

func TestJSONError(t *testing.T) {
	ts := time.Date(2026, 12, 7, 0, 0, 1, 5_000_000, time.UTC)
	got := string(JSONError(ts, `stalled: "x" <y>`))
	want := `{"ts":"2026-12-07T00:00:01.005Z","error":"stalled: \"x\" \u003cy\u003e"}` + "\n"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
