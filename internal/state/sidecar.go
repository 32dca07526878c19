package state

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/sums"
	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// A sums sidecar is a copy of the last block sums blkcat --sums wrote for a
// device, kept next to blkwrite's resume state. When a delta's digest check
// fails, blkwrite compares the blocks the delta left out (which it reads
// anyway) with it, and names the first block that changed after the sums
// were taken.

// sidecarPath is the sidecar for dev.
func (d Dir) sidecarPath(dev string) string {
	return d.file(dev, ".sums")
}

// SidecarWriter tees a sums stream into a temporary sidecar; failures to
// write it are ignored (it is only a diagnostic aid).
type SidecarWriter struct {
	out  io.Writer
	tmp  *os.File
	path string
}

// NewSidecarWriter starts dev's sidecar in one temporary file per device,
// "<sidecar>.tmp", locked while it is written: blkcat --sums killed by
// SIGPIPE when the other side of a nightly delta goes away (or by any
// signal) cannot remove it, and a random name left a new 0.2 %-of-the-
// device file behind every time. The next run for the device takes the
// same file over; a run that finds it locked by another keeps no sidecar.
func (d Dir) NewSidecarWriter(out io.Writer, dev string) *SidecarWriter {
	s := &SidecarWriter{out: out, path: d.sidecarPath(dev)}
	if os.MkdirAll(filepath.Dir(s.path), 0o700) != nil {
		return s
	}
	f, err := os.OpenFile(s.path+".tmp", os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return s
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil || f.Truncate(0) != nil {
		f.Close()
		return s
	}
	s.tmp = f
	return s
}

func (s *SidecarWriter) Write(p []byte) (int, error) {
	if s.tmp != nil {
		if _, err := s.tmp.Write(p); err != nil {
			s.abort()
		}
	}
	return s.out.Write(p)
}

// Finish keeps the sidecar if the sums stream was complete.
func (s *SidecarWriter) Finish(ok bool) {
	if s.tmp == nil {
		return
	}
	if !ok {
		s.abort()
		return
	}
	// Renamed while still locked, so no other run truncates it first.
	if err := os.Rename(s.tmp.Name(), s.path); err != nil {
		os.Remove(s.tmp.Name())
	}
	s.tmp.Close()
	s.tmp = nil
}

func (s *SidecarWriter) abort() {
	os.Remove(s.tmp.Name())
	s.tmp.Close()
	s.tmp = nil
}

// SidecarCheck compares the gap blocks of a delta stream, as the frame
// Reader reads them from the target, with the target's sidecar sums.
type SidecarCheck struct {
	f     *os.File
	sr    *sums.Reader
	bs    int64
	size  int64 // bytes the sums cover: the last block may be short
	next  int64 // index of the next digest sr returns
	first int64 // first block that differs from its sums, -1 if none yet
	// A block cut by the end of a read (the Reader reads gaps in 1 MiB
	// pieces; a 2 MiB block always spans two) is hashed across reads:
	// h holds its bytes from its start to pos, or pos is -1.
	h   *xxh3.Hasher
	pos int64
}

// OpenSidecar returns a check for a delta stream onto dev, or nil when
// there is no usable sidecar.
func (d Dir) OpenSidecar(dev string, h frame.Header) *SidecarCheck {
	if dev == "" || !h.Delta() {
		return nil
	}
	// In the nightly pipeline blkcat --sums of this target is still
	// running: its sidecar is the temporary one, and the one under the
	// final name is the night before's (taken before that night's delta).
	path := d.sidecarPath(dev)
	var r io.Reader
	f := openLiveSidecar(path + ".tmp")
	if f != nil {
		r = &liveReader{f: f}
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil
		}
		r = f
	}
	sr, err := sums.NewReader(r)
	if err != nil || sr.Header().BlockSize != int(h.BlockSize) || sr.Header().Size < h.SourceSize {
		f.Close()
		return nil
	}
	return &SidecarCheck{f: f, sr: sr, bs: int64(h.BlockSize), size: sr.Header().Size, first: -1, h: xxh3.New(), pos: -1}
}

// openLiveSidecar opens the temporary sidecar if a blkcat --sums still
// writes it (it holds the file's flock until it has renamed it), or
// returns nil.
func openLiveSidecar(path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	if !writerLive(f) {
		f.Close()
		return nil
	}
	return f
}

// writerLive reports whether another process holds f's flock: the
// blkcat --sums writing it. It takes no lock (a probe taken is let go),
// so the next --sums run of the device can take the file over.
func writerLive(f *os.File) bool {
	err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return err == unix.EWOULDBLOCK
}

// liveReader reads a sidecar that blkcat --sums is still writing. The
// digests a delta's left-out blocks need are there already (blkcat --sums
// writes each piece to the sidecar before it sends it, and blkcat
// --against has read it before it leaves a block out); at the file's
// current end (a write seen half done) it waits a little while the
// writer is alive.
type liveReader struct{ f *os.File }

func (r *liveReader) Read(p []byte) (int, error) {
	for i := 0; ; i++ {
		n, err := r.f.Read(p)
		if n > 0 || err != io.EOF {
			return n, err
		}
		if i == 100 || !writerLive(r.f) {
			return r.f.Read(p) // what it wrote before it let go
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Check looks at target bytes p read at off (a gap: not written by the
// stream). Reads come in increasing offsets; a block is checked once all
// of its bytes were seen in reads that follow each other. A nil check
// does nothing.
func (s *SidecarCheck) Check(p []byte, off int64) {
	if s == nil {
		return
	}
	for len(p) > 0 && off < s.size && s.first < 0 && s.sr != nil {
		i := off / s.bs
		start, end := i*s.bs, min((i+1)*s.bs, s.size)
		n := min(int64(len(p)), end-off)
		switch {
		case off == start && n == end-start:
			s.compare(i, sums.Sum(p[:n]))
			s.pos = -1
		case off == start || off == s.pos:
			if off == start {
				s.h.Reset()
			}
			s.h.Write(p[:n])
			s.pos = off + n
			if s.pos == end {
				s.compare(i, s.h.Sum64())
				s.pos = -1
			}
		default:
			s.pos = -1 // the block's start was not seen: leave it
		}
		p, off = p[n:], off+n
	}
}

// compare compares block i's digest v with its sums.
func (s *SidecarCheck) compare(i int64, v uint64) {
	for s.next < i {
		if _, err := s.sr.Next(); err != nil {
			s.sr = nil
			return
		}
		s.next++
	}
	want, err := s.sr.Next()
	if err != nil {
		s.sr = nil
		return
	}
	s.next++
	if v != want {
		s.first = i
	}
}

// Explain names the first differing block, if the check found one.
func (s *SidecarCheck) Explain(name string) string {
	if s == nil || s.first < 0 {
		return ""
	}
	return fmt.Sprintf("first differing block: block %d (bytes %d to %d) of %s is not what its sums said",
		s.first, s.first*s.bs, min((s.first+1)*s.bs, s.size)-1, ddmsg.Quote(name))
}

// Close closes the sidecar. A nil check does nothing.
func (s *SidecarCheck) Close() {
	if s != nil {
		s.f.Close()
	}
}
