package versions

import (
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/state"
)

func TestLabel(t *testing.T) {
	tm := time.Date(2026, 12, 7, 0, 42, 8, 395469819, time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		digest string
		want   string
	}{
		{"blake3", "78cb33031ca698dc35cd6507dc9e05e92a5e8803f74fe34fb8534b474a843356", "20261206T234208Z_78cb33031ca698dc"},
		{"short", "abc", "20261206T234208Z_abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Label(state.Copy{Time: tm, Digest: tt.digest}); got != tt.want {
				t.Errorf("Label = %q, want %q", got, tt.want)
			}
		})
	}
}
