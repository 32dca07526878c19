package receive

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/target"
	"golang.org/x/sys/unix"
)

// TestResumeAfterFailedSync: once an fdatasync of the target failed, no
// later resume point is recorded and the copy fails. Linux reports a
// writeback error once per open file, so the next fdatasync succeeds with
// the data lost: the resumer used to keep the old point only until then,
// record the next one as durable, and let the final fdatasync pass to
// "verified". The failing fdatasync is one on an O_PATH descriptor (EBADF).
func TestResumeAfterFailedSync(t *testing.T) {
	dir := t.TempDir()
	sdir := state.Dir(filepath.Join(dir, "state"))
	name := filepath.Join(dir, "dst")
	if err := os.WriteFile(name, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := os.OpenFile(name, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()

	r := &resumer{dir: sdir, target: name, tok: state.Token{Size: 1 << 20}, rep: progress.NewDD(io.Discard, "blkwrite", progress.LevelNone)}
	tg := &sink{Target: &target.Target{F: good, Name: name}}
	if err := r.advance(tg, frame.Record{Length: 4096}); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if tok, err := sdir.Load(name); err != nil || tok.Offset != 4096 {
		t.Fatalf("state after a good fdatasync: %+v, %v; want offset 4096", tok, err)
	}
	tg.F = bad
	if err := r.advance(tg, frame.Record{Offset: 4096, Length: 4096}); !errors.Is(err, unix.EBADF) {
		t.Fatalf("advance after a failed fdatasync: %v, want EBADF", err)
	}
	tg.F = good // this fdatasync would succeed
	if err := r.advance(tg, frame.Record{Offset: 8192, Length: 4096}); !errors.Is(err, unix.EBADF) {
		t.Errorf("advance after that: %v, want the first failure again", err)
	}
	r.save(tg)
	if tok, err := sdir.Load(name); err != nil || tok.Offset != 4096 {
		t.Errorf("state after the failed fdatasync: %+v, %v; want offset 4096 still", tok, err)
	}
}
