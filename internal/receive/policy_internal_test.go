package receive

import (
	"errors"
	"testing"

	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
)

// TestRestrictionStreams tables the stream checks of a restricted key:
// the declared size against the target's, and a delta's records against
// whole 4 KiB blocks (a record leaving part of a block to be read back
// would make END's verdict an oracle on bytes --sums does not cover).
func TestRestrictionStreams(t *testing.T) {
	dev := &Restriction{Size: 1 << 20, isBlock: true}
	file := &Restriction{Size: 1 << 20}
	newFile := &Restriction{Size: -1}
	full := frame.Header{SourceSize: 1 << 20, BlockSize: 1 << 20}
	delta := full
	delta.Flags |= frame.FlagDelta
	small := full
	small.SourceSize = 4096
	smallDelta := delta
	smallDelta.SourceSize = 1
	unknown := full
	unknown.SourceSize = -1
	resume := full
	resume.StartOffset = 4096
	odd := delta
	odd.SourceSize = 1<<20 + 1
	tests := []struct {
		name string
		r    *Restriction
		h    frame.Header
		recs []frame.Record
		ok   bool
	}{
		{"full to a device", dev, full, nil, true},
		{"smaller full to a device", dev, small, nil, false},
		{"smaller full to a file", file, small, nil, true},
		{"full to a new file", newFile, full, nil, true},
		{"unknown size", file, unknown, nil, false},
		{"one-byte delta", file, smallDelta, nil, false},
		{"delta to a new file", newFile, delta, nil, false},
		{"resume", dev, resume, nil, true},
		{"aligned delta", dev, delta, []frame.Record{{Type: frame.Data, Offset: 4096, Length: 8192}}, true},
		{"delta record off a block", dev, delta, []frame.Record{{Type: frame.Data, Offset: 1, Length: 4095}}, false},
		{"delta record short", dev, delta, []frame.Record{{Type: frame.Zero, Offset: 0, Length: 4095}}, false},
		{"delta's last short block", &Restriction{Size: 1<<20 + 1}, odd, []frame.Record{{Type: frame.Data, Offset: 1 << 20, Length: 1}}, true},
		{"no restriction", nil, smallDelta, []frame.Record{{Type: frame.Data, Offset: 1, Length: 1}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.checkHeader(tt.h, "t")
			for _, rec := range tt.recs {
				if err == nil {
					err = tt.r.checkRecord(tt.h, rec)
				}
			}
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ddtool.ErrRefused) {
				t.Fatalf("%v is not a refusal", err)
			}
		})
	}
}
