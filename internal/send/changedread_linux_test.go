package send

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/changes"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestChangedReads: both readers of changed ranges deliver every piece, in
// order, with the file's bytes, through many turns of the AIO arena;
// scattered leaves, 1 MiB pieces and a last piece that ends inside a
// sector at the file's end.
func TestChangedReads(t *testing.T) {
	const size = 48<<20 + 1000
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var pieces []changes.Range
	for off := int64(0); off < size-readPiece; off += readPiece {
		if rng.IntN(3) == 0 {
			pieces = append(pieces, changes.Range{Off: off, Len: readPiece})
		}
		for k := range 4 { // some leaves of the next MiB
			if rng.IntN(2) == 0 {
				pieces = append(pieces, changes.Range{Off: off + int64(k)*4*digest.LeafSize, Len: digest.LeafSize})
			}
		}
	}
	last := int64(size) / digest.LeafSize * digest.LeafSize
	pieces = append(pieces, changes.Range{Off: last, Len: size - last})

	for _, tc := range []struct {
		name  string
		start func(*ddcopy.Input, []changes.Range) (chan chan piece, func(piece), func())
	}{{"aio", aioReads}, {"pread", preadReads}} {
		t.Run(tc.name, func(t *testing.T) {
			f, direct, err := blockdev.OpenDirect(path, os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			in := &ddcopy.Input{Name: path, F: f, Direct: direct, Align: blockdev.DirectAlign(f)}
			queue, release, stop := tc.start(in, pieces)
			if queue == nil {
				testutil.Skip(t, tc.name+": no O_DIRECT or no AIO on "+path)
			}
			defer stop()
			k := 0
			for res := range queue {
				p := <-res
				if k >= len(pieces) {
					t.Fatalf("more pieces than the %d asked for", len(pieces))
				}
				want := pieces[k]
				if p.err != nil || p.off != want.Off || !bytes.Equal(p.buf, data[want.Off:want.End()]) {
					t.Fatalf("piece %d (%d bytes at %d): got %d bytes at %d, err %v, or other bytes", k, want.Len, want.Off, len(p.buf), p.off, p.err)
				}
				release(p)
				k++
			}
			if k != len(pieces) {
				t.Fatalf("%d pieces of %d", k, len(pieces))
			}
		})
	}
}

// TestChangedReadsStop: stopping the AIO reader before its queue is
// drained returns, with reads still in flight.
func TestChangedReadsStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(path, make([]byte, 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, direct, err := blockdev.OpenDirect(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pieces []changes.Range
	for off := int64(0); off < 32<<20; off += digest.LeafSize {
		pieces = append(pieces, changes.Range{Off: off, Len: digest.LeafSize})
	}
	queue, _, stop := aioReads(&ddcopy.Input{Name: path, F: f, Direct: direct, Align: blockdev.DirectAlign(f)}, pieces)
	if queue == nil {
		testutil.Skip(t, "no O_DIRECT or no AIO on "+path)
	}
	<-<-queue
	stop()
}
