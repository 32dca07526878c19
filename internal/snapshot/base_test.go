package snapshot

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckVerified: a lineage's base is offered only when it is the
// snapshot of the lineage's last verified copy, or when no verified copy
// is recorded; an older base (a record put back from a backup) and
// another snapshot are reported, naming both.
func TestCheckVerified(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	s1 := Snapshot{Path: "/dev/vg/x_snapctl_1", Created: t0}
	s2 := Snapshot{Path: "/dev/vg/x_snapctl_2", Created: t0.Add(24 * time.Hour)}
	s2again := Snapshot{Path: s2.Path, Created: t0.Add(25 * time.Hour)} // took the name of a removed s2
	tests := []struct {
		name      string
		base      Snapshot
		verified  *Snapshot // nil: none recorded
		damaged   bool
		wantErr   string // "" for no error
		wantCheck string // CheckBase's error for base.Path, as wantErr
	}{
		{"none recorded", s1, nil, false, "", ""},
		{"same", s2, &s2, false, "", ""},
		{"older", s1, &s2, false,
			"lineage x: base not usable: base /dev/vg/x_snapctl_1 (made 2026-12-07T01:00:00Z) is older than the last verified copy (of /dev/vg/x_snapctl_2, made 2026-12-08T01:00:00Z)", ""},
		{"same name, newer", s2again, &s2, false,
			"base /dev/vg/x_snapctl_2 (made 2026-12-08T02:00:00Z) is not the snapshot of the last verified copy (of /dev/vg/x_snapctl_2, made 2026-12-08T01:00:00Z)", ""},
		{"damaged", s1, nil, true, "lineage x: base not usable: record ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{StateDir: t.TempDir()}
			write := func(file string, s Snapshot) {
				b, _ := json.Marshal(s)
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(m.baseFile("x"), tc.base)
			if tc.verified != nil {
				write(m.verifiedFile("x"), *tc.verified)
			}
			if tc.damaged {
				os.MkdirAll(filepath.Dir(m.verifiedFile("x")), 0o700)
				if err := os.WriteFile(m.verifiedFile("x"), []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, err := range []error{m.checkVerified("x", tc.base), m.CheckBase(tc.base.Path), m.CheckBase(strings.TrimPrefix(tc.base.Path, "/dev/"))} {
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("error %v, want none", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBaseUnusable)):
					t.Errorf("error %v, want ErrBaseUnusable with %q", err, tc.wantErr)
				}
			}
			if err := m.CheckBase("/dev/vg/other"); err != nil {
				t.Errorf("CheckBase of a path that is no base: %v", err)
			}
		})
	}
}

// TestKeepBaseRecordsVerified: KeepBase records the snapshot as the
// lineage's last verified copy and as its base, so the next Base check
// passes; a base record put back to the previous snapshot fails it.
func TestKeepBaseRecordsVerified(t *testing.T) {
	m := &Manager{StateDir: t.TempDir()}
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	s1 := Snapshot{Path: filepath.Join(t.TempDir(), "s1"), Created: t0}
	s2 := Snapshot{Path: filepath.Join(t.TempDir(), "s2"), Created: t0.Add(time.Hour)}
	// No previous base to remove, then s1 as the previous: a path that
	// does not exist is no error for Remove's caller.
	for _, s := range []Snapshot{s1, s2} {
		if err := m.KeepBase(t.Context(), "x", s); err != nil && !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "remove the previous base") {
			t.Fatalf("KeepBase %s: %v", s.Path, err)
		}
	}
	if err := m.checkVerified("x", s2); err != nil {
		t.Errorf("after KeepBase, the base is refused: %v", err)
	}
	b, _ := json.Marshal(s1)
	os.WriteFile(m.baseFile("x"), b, 0o600) // the state restored from before s2
	if err := m.CheckBase(s1.Path); err == nil || !strings.Contains(err.Error(), "is older than the last verified copy (of "+s2.Path) {
		t.Errorf("a base put back to %s: %v", s1.Path, err)
	}
}
