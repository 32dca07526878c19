package state

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"sync"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// Kept state is what blkwrite keeps beside a verified copy so that the
// next delta and the next blkcat --sums of the target need not read all of
// it: the copy record, the digest map (leaf chaining values of the target's
// first Size bytes) and the target's 4 KiB block sums. Before any of it is
// trusted, Kept checks it against the target (identity, size, a regular
// file's mtime, and SampleLeaves leaves read back and rehashed).

// SampleLeaves is how many leaves, chosen at random, Kept rehashes from
// the target and compares with the map: a device has no mtime, so a write
// behind blkwrite's back is found by its contents (with probability about
// 8 × changed leaves / leaves), and a file's mtime can be set back.
const SampleLeaves = 8

// KeptBlockSize is the block size of the kept sums (the default of
// blkcat --sums).
const KeptBlockSize = sums.DefaultBlockSize

// ErrNoCopy is returned by Kept when no copy record is kept for the
// target at all.
var ErrNoCopy = errors.New("no copy record")

// SumsPath is where the kept block sums of target's last verified copy are.
func (d Dir) SumsPath(target string) string {
	return d.file(target, ".keptsums")
}

// SaveSums replaces target's kept block sums with b (a sums stream) and
// returns the checksum a Copy records for them.
func (d Dir) SaveSums(target string, b []byte) (string, error) {
	if err := d.replace(d.SumsPath(target), b); err != nil {
		return "", err
	}
	return sumsCRC(b), nil
}

func sumsCRC(b []byte) string { return fmt.Sprintf("%08x", crc32.Checksum(b, crcTable)) }

// Kept is a target's kept state, found valid for it by Dir.Kept.
type Kept struct {
	Copy Copy
	Map  *digest.Map
}

// Kept loads target's copy record and digest map and checks them against
// f, the open target: the same file or device (Copy.Same), at least
// Copy.Size bytes (exactly, for a file), the map of Copy.Digest, and
// SampleLeaves random leaves of f hash as the map says. The error says in
// a few words why the state cannot be trusted; it is never trusted then.
func (d Dir) Kept(f *os.File, target string) (*Kept, error) {
	c, err := d.LoadCopy(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, ErrNoCopy
	case errors.Is(err, ErrDamaged):
		return nil, errors.New("the copy record is damaged")
	case err != nil:
		return nil, err
	}
	if c.Alg != "blake3" {
		return nil, fmt.Errorf("the last copy was verified with %s", c.Alg)
	}
	if err := checkTarget(f, c); err != nil {
		return nil, err
	}
	m, err := loadMap(d.MapPath(target), "map", c)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no digest map")
	}
	if err != nil {
		return nil, err
	}
	if i, err := sampleLeaves(f, m); err != nil {
		return nil, fmt.Errorf("read the target to check sampled leaves: %v", err)
	} else if i >= 0 {
		return nil, fmt.Errorf("leaf %d (bytes %d to %d) of the target is not what the map says: the target was changed since",
			i, i*digest.LeafSize, min((i+1)*digest.LeafSize, m.Size)-1)
	}
	return &Kept{Copy: c, Map: m}, nil
}

// checkTarget checks that f is the target c records, unchanged since
// (Copy.Same), and that it holds c.Size bytes (exactly, for a file).
func checkTarget(f *os.File, c Copy) error {
	id, err := Identify(f)
	if err != nil {
		return err
	}
	if !c.Same(id) {
		return errors.New("the target was changed since")
	}
	size, err := targetSize(f)
	if err != nil {
		return err
	}
	if size < c.Size || id.Ino != 0 && size != c.Size {
		return fmt.Errorf("the target is %d bytes, the copy record says %d", size, c.Size)
	}
	return nil
}

// Recheck checks that f is still the target k was loaded and checked for
// (by Kept, perhaps on another descriptor), unchanged since: its identity
// and stamp, and its size. The sampled leaves are not read again: what
// they showed holds while the stamp has not moved.
func (k *Kept) Recheck(f *os.File) error { return checkTarget(f, k.Copy) }

func targetSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		return blockdev.Size(f)
	}
	return fi.Size(), nil
}

// sampleLeaves rehashes up to SampleLeaves random leaves of f (with the
// last leaf among them) and returns the first that differs from m, or -1.
// The leaves are read at once: one at a time, each read would wait for
// the disk, and blkcat --sums answers, and a delta starts, only after.
func sampleLeaves(f *os.File, m *digest.Map) (int64, error) {
	n := int64(len(m.Leaves))
	if m.Size == 0 {
		return -1, nil
	}
	picks := []int64{n - 1}
	for range SampleLeaves - 1 {
		picks = append(picks, rand.Int64N(n))
	}
	// A descriptor of its own: f may have O_DIRECT, which needs
	// aligned buffers.
	if r, err := os.Open(f.Name()); err == nil {
		defer r.Close()
		f = r
	}
	differs := make([]bool, len(picks))
	errs := make([]error, len(picks))
	var wg sync.WaitGroup
	for k, i := range picks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, min(digest.LeafSize, m.Size-i*digest.LeafSize))
			if _, err := f.ReadAt(b, i*digest.LeafSize); err != nil && !(err == io.EOF && len(b) == 0) {
				errs[k] = err
				return
			}
			if n == 1 {
				differs[k] = digest.Sum256(b) != m.Root
			} else {
				differs[k] = digest.LeafCV(b, i) != m.Leaves[i]
			}
		}()
	}
	wg.Wait()
	for k, i := range picks {
		if errs[k] != nil {
			return 0, errs[k]
		}
		if differs[k] {
			return i, nil
		}
	}
	return -1, nil
}

// KeptSums returns the kept block sums of k's copy (a sums stream of
// KeptBlockSize blocks over Copy.Size bytes), checked against the record.
func (d Dir) KeptSums(k *Kept) ([]byte, error) {
	return loadSums(d.SumsPath(k.Copy.Target), "kept block sums", k.Copy)
}

// loadMap reads the digest map at path (the map c records, what) and
// checks it is c's: the error of reading it as it is (os.ErrNotExist
// when there is none), else one naming what.
func loadMap(path, what string, c Copy) (*digest.Map, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := digest.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("the %s is damaged: %v", what, err)
	}
	if m.Size != c.Size || fmt.Sprintf("%x", m.Root) != c.Digest {
		return nil, fmt.Errorf("the %s is of another copy", what)
	}
	return m, nil
}

// loadSums reads the block sums at path (the sums c records, what) and
// checks them against c's CRC; the error names what.
func loadSums(path, what string, c Copy) ([]byte, error) {
	if c.Sums == "" {
		return nil, fmt.Errorf("no %s", what)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no %s (%v)", what, err)
	}
	if sumsCRC(b) != c.Sums {
		return nil, fmt.Errorf("the %s are damaged or of another copy", what)
	}
	return b, nil
}
