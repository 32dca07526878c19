package receive

import (
	"errors"
	"reflect"
	"testing"

	"github.com/blkpipe/blkpipe/internal/ddtool"
)

func TestForced(t *testing.T) {
	tests := []struct {
		name         string
		own, client  []string
		forced, rest []string
		want         []string
		refused      bool
	}{
		{"none", nil, []string{"/t"}, nil, nil, []string{"/t"}, false},
		{"keep N", []string{"--keep", "7"}, []string{"/t"}, []string{"--keep", "7"}, nil, []string{"/t", "--keep", "7"}, false},
		{"keep=N among others", []string{"-q", "--keep=3"}, []string{"bs=4M", "/t"}, []string{"--keep=3"}, []string{"-q"}, []string{"bs=4M", "/t", "--keep=3"}, false},
		{"client may add keep when the forced command has none", nil, []string{"--keep", "2", "/t"}, nil, nil, []string{"--keep", "2", "/t"}, false},
		{"client may not change keep", []string{"--keep", "7"}, []string{"--keep", "0", "/t"}, []string{"--keep", "7"}, nil, nil, true},
		{"client may not change keep=", []string{"--keep", "7"}, []string{"--keep=100", "/t"}, []string{"--keep", "7"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forced, rest := Forced(tt.own)
			if !reflect.DeepEqual(forced, tt.forced) || !reflect.DeepEqual(rest, tt.rest) {
				t.Fatalf("Forced(%q) = %q, %q; want %q, %q", tt.own, forced, rest, tt.forced, tt.rest)
			}
			got, err := WithForced(tt.client, forced)
			if tt.refused {
				if !errors.Is(err, ddtool.ErrRefused) {
					t.Fatalf("WithForced(%q, %q) = %q, %v; want a refusal", tt.client, forced, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("WithForced(%q, %q) = %q, %v; want %q", tt.client, forced, got, err, tt.want)
			}
		})
	}
}
