package send

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/state"
)

// blkcat --digest[=ALG] SRC... prints each SRC's whole digest as b3sum
// (or sha256sum) prints it, and blkcat --check SRC... rehashes each SRC
// against the digest map blkwrite keeps for it as a target. Both read
// files and devices with O_DIRECT in aligned chunks, several at once, and
// hash them on all cores where they were read (digest.SumAt); the pages
// of a regular file already in the page cache are copied from the cache
// (blockdev.CachedReader).

// sumChunk is the size of one read: 4 MiB, 4 digest pieces.
const sumChunk = 4 << 20

// sumFile is the digest of one source and, for --check, its leaves.
type sumFile struct {
	size   int64
	sum    [32]byte
	leaves []digest.CV
}

// hashPath hashes the file or device path with alg; with leaves (BLAKE3
// only) it keeps the leaves' chaining values. "-" is stdin.
func hashPath(path string, stdin *os.File, alg frame.DigestAlg, leaves bool) (sumFile, error) {
	f, direct := stdin, false
	if path != "-" {
		var err error
		f, direct, err = blockdev.OpenDirect(path, os.O_RDONLY, 0)
		if err != nil {
			return sumFile{}, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return sumFile{}, &os.PathError{Op: "read", Path: path, Err: errors.New("is a directory")}
		}
	}
	size, err := blockdev.Size(f)
	if errors.Is(err, blockdev.ErrNotSized) && !leaves {
		return hashStream(f, alg)
	}
	if err != nil {
		return sumFile{}, err
	}
	align := 4096
	var r io.ReaderAt = f
	if direct {
		align = max(align, blockdev.DirectAlign(f))
		// What a file has in the page cache is copied from there.
		if cr := blockdev.NewCachedReader(f, align); cr != nil {
			defer cr.Close()
			r = cr
		}
	}
	alloc := func(n int) []byte { return blockdev.AlignedBuffer(n, align) }
	s := sumFile{size: size}
	if alg == frame.DigestSHA256 {
		s.sum, err = sha256At(r, size, alloc, int64(align))
	} else {
		s.sum, s.leaves, err = digest.SumAt(r, size, digest.ReadConfig{Chunk: sumChunk, Alloc: alloc, Align: align, Leaves: leaves})
	}
	return s, err
}

// hashStream hashes what cannot be read at offsets (a pipe, standard
// input), in order.
func hashStream(r io.Reader, alg frame.DigestAlg) (sumFile, error) {
	var s sumFile
	buf := make([]byte, 1<<20)
	if alg == frame.DigestSHA256 {
		h := sha256.New()
		n, err := io.CopyBuffer(h, r, buf)
		s.size = n
		copy(s.sum[:], h.Sum(nil))
		return s, err
	}
	h := digest.New()
	defer h.Close()
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return s, err
	}
	s.size, s.sum = n, h.Sum()
	return s, nil
}

// sha256At returns the SHA-256 of r's first size bytes: one goroutine
// reads chunks ahead while this one hashes, as SHA-256 is one serial pass.
func sha256At(r io.ReaderAt, size int64, alloc func(int) []byte, align int64) ([32]byte, error) {
	type block struct {
		b   []byte
		err error
	}
	chunk := min(sumChunk, (size+align-1)/align*align)
	free := make(chan []byte, 3)
	for range cap(free) {
		free <- nil
	}
	full := make(chan block, cap(free))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for off := int64(0); off < size; {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			if b == nil {
				b = alloc(int(chunk))
			}
			want := min(chunk, (size-off+align-1)/align*align)
			need := min(want, size-off)
			k, err := r.ReadAt(b[:want], off)
			if int64(k) < need {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				full <- block{err: fmt.Errorf("read %d bytes at offset %d: %w", need, off+int64(k), err)}
				return
			}
			full <- block{b: b[:need]}
			off += need
		}
	}()
	h := sha256.New()
	var sum [32]byte
	for x := range full {
		if x.err != nil {
			return sum, x.err
		}
		h.Write(x.b)
		free <- x.b[:cap(x.b)]
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// sumLine is the line b3sum and sha256sum print for name: a name with a
// backslash or a newline is escaped and the line starts with a backslash.
func sumLine(sum [32]byte, name string) string {
	if !strings.ContainsAny(name, "\\\n\r") {
		return fmt.Sprintf("%x  %s\n", sum, name)
	}
	name = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(name)
	return fmt.Sprintf("\\%x  %s\n", sum, name)
}

// PrintDigests writes to stdout, for each of srcs (standard input for
// none or "-"), its alg digest as b3sum or sha256sum prints it. A source
// that cannot be read is named on stderr and the others are still
// hashed; the error returned then says how many failed, already printed.
func PrintDigests(name string, alg frame.DigestAlg, srcs []string, stdin *os.File, stdout, stderr io.Writer) error {
	if len(srcs) == 0 {
		srcs = []string{"-"}
	}
	failed := 0
	for _, src := range srcs {
		s, err := hashPath(src, stdin, alg, false)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %v\n", name, sumError(src, err))
			continue
		}
		if _, err := io.WriteString(stdout, sumLine(s.sum, src)); err != nil {
			return fmt.Errorf("write standard output: %w", err)
		}
	}
	if failed > 0 {
		return ddtool.Reported(fmt.Errorf("%d of %d sources could not be read", failed, len(srcs)))
	}
	return nil
}

// sumError words a failure to hash src.
func sumError(src string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == src {
		return fmt.Errorf("%s: %w", ddmsg.Quote(src), pe.Err)
	}
	return fmt.Errorf("error reading %s: %w", ddmsg.Quote(src), err)
}

// ErrCheck is returned by Check when a source differs from its map or has
// no usable map; the details were printed.
var ErrCheck = errors.New("check failed")

// Check rehashes each of srcs and compares its leaves with the digest map
// blkwrite keeps for it (dir.MapPath): it prints "check 'SRC': ok, blake3
// HEX" or the first MiB that differs and how many leaves do, on stderr.
// It returns an error wrapping ErrCheck, already printed, if any source
// differs, has no map, a damaged one, one of another size, or cannot be
// read.
func Check(name string, dir state.Dir, srcs []string, stderr io.Writer) error {
	failed := 0
	for _, src := range srcs {
		msg, ok := checkOne(dir, src)
		fmt.Fprintf(stderr, "%s: check %s: %s\n", name, ddmsg.Quote(src), msg)
		if !ok {
			failed++
		}
	}
	if failed > 0 {
		return ddtool.Reported(fmt.Errorf("%w: %d of %d sources", ErrCheck, failed, len(srcs)))
	}
	return nil
}

// checkOne checks src against its map and returns what to say.
func checkOne(dir state.Dir, src string) (msg string, ok bool) {
	path := dir.MapPath(src)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("no digest map (%s): blkwrite keeps one for a target after each verified copy to it", path), false
	}
	if err != nil {
		return fmt.Sprintf("cannot read its digest map: %v", err), false
	}
	m, err := digest.Unmarshal(b)
	if err != nil {
		return fmt.Sprintf("its digest map %s is damaged, not trusted: %v", path, err), false
	}
	s, err := hashPath(src, nil, frame.DigestBLAKE3, true)
	if err != nil {
		return sumError(src, err).Error(), false
	}
	if s.size != m.Size {
		return fmt.Sprintf("it is %d bytes, its digest map (%s) is of %d bytes: not the copy the map describes", s.size, path, m.Size), false
	}
	first, differ := int64(-1), 0
	for i, cv := range s.leaves {
		if cv != m.Leaves[i] {
			if first < 0 {
				first = int64(i)
			}
			differ++
		}
	}
	if first < 0 && s.sum != m.Root {
		first, differ = 0, 1
	}
	if first < 0 {
		return fmt.Sprintf("ok, blake3 %x", s.sum), true
	}
	off := first * digest.LeafSize
	return fmt.Sprintf("differs from its map at MiB %d (byte offset %d); %d of %d leaves of 64 KiB differ", off>>20, off, differ, len(s.leaves)), false
}
