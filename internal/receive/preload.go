package receive

import (
	"os"
	"syscall"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// keptState is a target's kept state as useMap checks it: each step's
// result, in useMap's order, so that the first failure is the one said.
type keptState struct {
	kept    *state.Kept
	keptErr error
	sumsErr error // KeptSums
	sh      sums.Header
	ds      []uint64
	decErr  error // sums.Decode
	tree    *digest.Tree
	treeErr error
}

// loadKept loads and checks target's kept state in dir against f, the
// open target (state.Dir.Kept: its identity, size and sampled leaves),
// with its block sums decoded and the map's tree built.
func loadKept(dir state.Dir, f *os.File, target string) *keptState {
	s := &keptState{}
	if s.kept, s.keptErr = dir.Kept(f, target); s.keptErr != nil {
		return s
	}
	b, err := dir.KeptSums(s.kept)
	if s.sumsErr = err; err != nil {
		return s
	}
	return keptFrom(s.kept, b)
}

// keptFrom checks kept and its block sums b as loadKept does after
// loading them: the sums decoded and the map's tree built.
func keptFrom(kept *state.Kept, b []byte) *keptState {
	s := &keptState{kept: kept}
	if s.sh, s.ds, s.decErr = sums.Decode(b); s.decErr != nil {
		return s
	}
	s.tree, s.treeErr = s.kept.Map.Tree()
	return s
}

// Preloaded is a delta target's kept state, loaded while blkwrite waits
// for the stream (Preload): checking it reads sampled leaves of the
// target, which, once the sender reads its source, wait behind those
// reads on a shared disk, and blkwrite reads the stream only after.
type Preloaded struct {
	done chan struct{}
	s    *keptState
}

// Preload starts loading target's kept state from dir on a descriptor of
// its own (read only), for Options.Preloaded. The stream may turn out to
// be no delta: then it is not used.
func Preload(dir state.Dir, target string) *Preloaded {
	p := &Preloaded{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// Only a file or a block device: opening a FIFO or a tape is
		// not without effect.
		if fi, err := os.Stat(target); err != nil || !fileOrBlock(fi) {
			return
		}
		f, err := os.OpenFile(target, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return
		}
		defer f.Close()
		if fi, err := f.Stat(); err != nil || !fileOrBlock(fi) {
			return
		}
		p.s = loadKept(dir, f, target)
	}()
	return p
}

// get returns the preloaded state if it is valid and f, the target as
// blkwrite opened it, is the file or device it was checked on, unchanged
// since (state.Kept.Recheck); nil otherwise, and useMap loads it anew
// (to say why it is not valid). p may be nil.
func (p *Preloaded) get(f *os.File) *keptState {
	if p == nil {
		return nil
	}
	<-p.done
	s := p.s
	if s == nil || s.keptErr != nil || s.sumsErr != nil || s.decErr != nil || s.treeErr != nil {
		return nil
	}
	if s.kept.Recheck(f) != nil {
		return nil
	}
	return s
}

// drop lets the preloaded state go once used; p may be nil.
func (p *Preloaded) drop() {
	if p != nil {
		<-p.done
		p.s = nil
	}
}

func fileOrBlock(fi os.FileInfo) bool {
	m := fi.Mode()
	return m.IsRegular() || m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0
}
