package send

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/changes"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/state"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// This file is blkcat --changed-from BASE SNAP: a delta stream made from
// snapshot metadata. The change list (which bytes of SNAP may differ
// from BASE) comes from the snapshots themselves (changes.Compare for
// reflink clones and btrfs snapshot files, or a list snapctl wrote);
// only those ranges are read, widened to whole 64 KiB leaves. Each leaf
// read is rehashed into BASE's leaf map, kept from the run that sent
// BASE, so END carries SNAP's BLAKE3 root without reading the rest of
// SNAP; each 4 KiB block in it is compared with BASE's kept block sums,
// and only blocks that differ are sent. The header names BASE's root,
// which blkwrite compares with its record of the target before it writes
// anything. After END, SNAP's map and sums are kept for the next run.

// sumBlock is the granularity of what is sent: the block sums' block.
const sumBlock = sums.DefaultBlockSize

// blocksPerLeaf is the number of sum blocks in a leaf.
const blocksPerLeaf = digest.LeafSize / sumBlock

// readPiece is the most one read of a changed range asks for; readers is
// how many reads are in flight: scattered changes make many small reads
// (a 64 KiB leaf each), which a disk or pool serves far better queued
// deep. Memory: readers+2 buffers of readPiece.
const (
	readPiece = 1 << 20
	readers   = 16
)

// ErrNoBase means blkcat --changed-from cannot make a changed-block delta
// from this BASE and SNAP (another kind of source, another size, no
// trustworthy change list): the caller falls back to a sums delta or a
// full copy. Nothing was sent.
var ErrNoBase = errors.New("no changed-block delta")

// ChangedStats is what a changed-block send read and sent.
type ChangedStats struct {
	Listed, Read, Blocks int64 // bytes the change list names, bytes read from SNAP, 4 KiB blocks sent
	Sent                 int64 // stream bytes written
	Root                 [32]byte
}

// Changed sends the changed-block delta of in (SNAP) against opt.ChangedFrom
// (BASE) to out. Nothing is written to out before the change list, BASE's
// map and the stream header are ready, so an error before then leaves the
// receiver an empty input.
func Changed(ctx context.Context, opt Options, in *ddcopy.Input, out io.Writer, rep *progress.DD, dir state.Dir) (ChangedStats, error) {
	var st ChangedStats
	size := in.Size
	if !in.Seekable || size < 0 {
		return st, ddtool.Usage(fmt.Sprintf("--changed-from needs SRC to be a device or file of known size; %s is not", ddmsg.Quote(in.Name)))
	}
	baseF, err := os.Open(opt.ChangedFrom)
	if err != nil {
		return st, &ddmsg.Error{Msg: "failed to open base " + ddmsg.Quote(opt.ChangedFrom), Err: err}
	}
	defer baseF.Close()
	baseSize, err := sourceSize(baseF)
	if err != nil {
		return st, err
	}
	if baseSize != size {
		return st, fmt.Errorf("%w: base %s is %d bytes, %s is %d: make a sums delta or a full copy", ErrNoBase, ddmsg.Quote(opt.ChangedFrom), baseSize, ddmsg.Quote(in.Name), size)
	}
	var list changes.List
	err = ddtool.Interruptible(ctx, func() (err error) {
		list, err = changeList(opt, baseF, in.F)
		return err
	})
	if err != nil {
		return st, err
	}
	if last := len(list); last > 0 && list[last-1].End() > size {
		from := "of the extents of " + ddmsg.Quote(opt.ChangedFrom) + " and " + ddmsg.Quote(in.Name)
		if opt.Changes != "" {
			from = ddmsg.Quote(opt.Changes)
		}
		return st, fmt.Errorf("%w: the change list %s reaches byte %d of %s, a %d-byte source", ErrNoBase, from, list[last-1].End(), ddmsg.Quote(in.Name), size)
	}
	st.Listed = list.Bytes()
	tok, err := changedResume(opt, in, size) // changedresume.go
	if err != nil {
		return st, err
	}
	var b *baseline
	err = ddtool.Interruptible(ctx, func() (err error) {
		b, err = loadBaseline(dir, opt.ChangedFrom, baseF, size, rep)
		return err
	})
	if err != nil {
		return st, err
	}
	defer b.close()

	if err := checkResumeBase(tok, opt.ChangedFrom, b.root); err != nil {
		return st, err
	}

	aligned := list.Align(digest.LeafSize, size)
	checked, err := spotCheck(in, b.sums, aligned, size)
	if err != nil {
		return st, err
	}
	cw := &countWriter{w: out}
	s := &changedSender{out: cw, name: in.Name, resume: tok, b: b, size: size, patch: map[int64]uint64{},
		opts: []frame.WriterOption{frame.WithCodec(opt.Codec, opt.Level), frame.WithSourceSize(size),
			frame.WithBlockSize(digest.LeafSize), frame.WithExpectedBase(size, b.root)}}
	s.read = checked
	if tok == nil {
		// The header goes out at once; a resume's waits for the check
		// of what blkwrite applied (writer).
		if _, err := s.writer(); err != nil {
			return st, err
		}
	}
	err = s.readAll(ctx, in, aligned, rep)
	if err == nil {
		st.Root, err = b.tree.Root()
	}
	var rw *frame.RecordWriter
	if err == nil {
		rw, err = s.writer()
	}
	if err == nil {
		err = rw.Close(st.Root)
		if err == nil && opt.Ended != nil {
			opt.Ended()
		}
	} else if s.rw != nil {
		s.rw.Abort(err)
	}
	st.Read, st.Blocks, st.Sent = s.read, s.blocks, cw.n
	rep.C.Bytes.Store(cw.n)
	if err != nil {
		return st, err
	}
	if tok != nil {
		rep.Diagnose(fmt.Sprintf("resumed the changed-block delta at byte %d of %d", tok.Offset, size))
	}
	if err := b.save(dir, in, st.Root, s.patch, rw.Header().StreamID); err != nil {
		// The stream is complete and right; only the next run loses
		// its shortcut (it hashes SNAP once).
		rep.Note(fmt.Sprintf("%s was sent, but its leaf map was not kept for the next run: %v", ddmsg.Quote(in.Name), err))
	}
	if err := dir.PruneSent(); err != nil {
		rep.Note(fmt.Sprintf("could not remove the kept leaf maps of snapshots that are gone: %v", err))
	}
	return st, nil
}

// spotChecks is how many blocks outside the change list spotCheck reads.
const spotChecks = 64

// spotCheck reads up to spotChecks sum blocks of SNAP at random outside
// list and compares them with BASE's sums: a change list that misses
// changes (wrong metadata, a snapshot of another origin) would otherwise
// give a copy that verifies against the root the sender computed but is
// not SNAP. It cannot prove a list complete; it catches lists that miss
// much. It returns the bytes it read.
func spotCheck(in *ddcopy.Input, t *sums.Table, list changes.List, size int64) (int64, error) {
	n := sums.Blocks(size, sumBlock)
	var picks []int64
	listed := list.Bytes()
	for range spotChecks {
		if n == 0 || listed >= size {
			break
		}
		i := rand.Int64N(n)
		if !list.Covers(changes.Range{Off: i * sumBlock, Len: min(sumBlock, size-i*sumBlock)}) {
			picks = append(picks, i)
		}
	}
	read := func(off int64) ([]byte, error) {
		buf := blockdev.AlignedBuffer(sumBlock, 4096)
		got, err := readAt(in, buf, off, int(min(sumBlock, size-off)))
		if err != nil {
			err = &ddmsg.Error{Msg: fmt.Sprintf("error reading %s at offset %d", ddmsg.Quote(in.Name), off), Err: err}
		}
		return buf[:got], err
	}
	return checkPicks(t, picks, read, func(i int64) error {
		return fmt.Errorf("%w: the change list misses the block at offset %d of %s, which differs from the base's: the snapshots' metadata cannot be trusted", ErrNoBase, i*sumBlock, ddmsg.Quote(in.Name))
	})
}

// checkPicks reads the sum blocks picks with read, several at once, and
// compares each, in picks' order, with its sum in t. It stops at the
// first block read fails on (with read's error), whose sum t cannot give,
// or that differs (with differs(block)), and returns the bytes read of
// the blocks it compared or stopped at.
func checkPicks(t *sums.Table, picks []int64, read func(off int64) ([]byte, error), differs func(i int64) error) (int64, error) {
	bufs, errs := make([][]byte, len(picks)), make([]error, len(picks))
	inFlight(len(picks), func(k int) {
		bufs[k], errs[k] = read(picks[k] * sumBlock)
	})
	var total int64
	var v [1]uint64
	for k, i := range picks {
		total += int64(len(bufs[k]))
		if errs[k] != nil {
			return total, errs[k]
		}
		if err := t.Get(i, v[:]); err != nil {
			return total, err
		}
		if sums.Sum(bufs[k]) != v[0] {
			return total, differs(i)
		}
	}
	return total, nil
}

// changeList returns the ranges of snap that may differ from base: from a
// list file (--changes), or from the two files' extents.
func changeList(opt Options, base, snap *os.File) (changes.List, error) {
	if opt.Changes != "" {
		f, err := os.Open(opt.Changes)
		if err != nil {
			return nil, &ddmsg.Error{Msg: "failed to open change list " + ddmsg.Quote(opt.Changes), Err: err}
		}
		defer f.Close()
		l, err := changes.ReadList(f)
		if err != nil {
			return nil, fmt.Errorf("%w: change list %s: %w", ErrNoBase, ddmsg.Quote(opt.Changes), err)
		}
		return l, nil
	}
	l, err := compareFiles(base, snap)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBase, err)
	}
	return l, nil
}

// sourceSize is f's size: a block device's or a regular file's.
func sourceSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		n, err := blockdev.Size(f)
		return n, err
	}
	return fi.Size(), nil
}

// changedSender turns the leaves read from SNAP into records.
type changedSender struct {
	rw     *frame.RecordWriter // nil until writer starts the stream
	out    io.Writer
	opts   []frame.WriterOption
	name   string // SNAP, for messages
	resume *state.Token
	// applied sums the blocks before the resume point, which are not
	// sent (see writer).
	applied state.Applied
	b       *baseline
	size    int64
	patch   map[int64]uint64 // sum block → SNAP's digest, where it differs from BASE's
	read    int64
	blocks  int64
	kept    []uint64 // BASE's sums of the piece being read, reused

	runOff  int64 // pending DATA run, within one leaf
	data    []byte
	zeroOff int64 // pending ZERO run
	zeroLen int64
}

// A piece is one read of a changed range: its offset, the bytes read,
// or the error.
type piece struct {
	off  int64
	buf  []byte
	want int   // bytes asked for (aioReads)
	span int64 // what buf takes of aioReads' arena
	err  error
}

// readAll reads the leaf-aligned ranges of list from in, several reads in
// flight (aioReads, else preadReads), and hands them to leaf in order.
func (s *changedSender) readAll(ctx context.Context, in *ddcopy.Input, list changes.List, rep *progress.DD) error {
	var pieces []changes.Range
	for _, r := range list {
		for off := r.Off; off < r.End(); off += readPiece {
			pieces = append(pieces, changes.Range{Off: off, Len: min(readPiece, r.End()-off)})
		}
	}
	queue, release, stop := aioReads(in, pieces)
	if queue == nil {
		queue, release, stop = preadReads(in, pieces)
	}
	defer stop()
	for res := range queue {
		p := <-res
		if p.err != nil {
			return &ddmsg.Error{Msg: fmt.Sprintf("error reading %s at offset %d", ddmsg.Quote(in.Name), p.off), Err: p.err}
		}
		if err := ctx.Err(); err != nil {
			return ddtool.ErrInterrupted
		}
		s.read += int64(len(p.buf))
		rep.C.InFull.Add(1)
		kept := s.keptSums(p.off, len(p.buf))
		for o := 0; o < len(p.buf); o += digest.LeafSize {
			var old []uint64
			if kept != nil {
				old = kept[o/sumBlock:]
			}
			if err := s.leaf(p.off+int64(o), p.buf[o:min(o+digest.LeafSize, len(p.buf))], old); err != nil {
				return err
			}
		}
		release(p)
	}
	return s.flush()
}

// preadReads reads pieces of in in order, on up to readers goroutines
// with a pread each, and returns the queue of their results, in order.
func preadReads(in *ddcopy.Input, pieces []changes.Range) (queue chan chan piece, release func(piece), stop func()) {
	align := max(in.Align, 512)
	queue = make(chan chan piece, readers)
	free := make(chan []byte, readers+2)
	for range readers + 2 {
		free <- blockdev.AlignedBuffer(readPiece, align)
	}
	done := make(chan struct{})
	go func() {
		defer close(queue)
		sem := make(chan struct{}, readers)
		for _, p := range pieces {
			res := make(chan piece, 1)
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			select {
			case queue <- res:
			case <-done:
				return
			}
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				n, err := readAt(in, buf, p.Off, int(p.Len))
				res <- piece{off: p.Off, buf: buf[:n], err: err}
			}()
		}
	}()
	return queue, func(p piece) { free <- p.buf[:cap(p.buf)] }, func() { close(done) }
}

// readAt reads want bytes at off (want is a multiple of 4 KiB but at the
// source's end) into buf, with O_DIRECT when in has it on.
func readAt(in *ddcopy.Input, buf []byte, off int64, want int) (int, error) {
	asked := want
	if in.Direct {
		asked = min(len(buf), (want+4095)&^4095) // O_DIRECT reads whole sectors; the source ends inside one
	}
	n, err := in.F.ReadAt(buf[:asked], off)
	if n >= want {
		return want, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// keptSums returns BASE's sums of the sum blocks of the piece of n bytes
// at off, read with one pread into s.kept, or nil when that read fails:
// each leaf then reads its own and fails with its own error, as before.
func (s *changedSender) keptSums(off int64, n int) []uint64 {
	nb := (n + sumBlock - 1) / sumBlock
	if cap(s.kept) < nb {
		s.kept = make([]uint64, nb)
	}
	kept := s.kept[:nb]
	if err := s.b.sums.Get(off/sumBlock, kept); err != nil {
		return nil
	}
	return kept
}

// leaf rehashes the leaf at off (b, whole but at the source's end) into
// the map and queues its sum blocks that differ from BASE's. old holds
// BASE's sums of the leaf's sum blocks; when nil, leaf reads them.
func (s *changedSender) leaf(off int64, b []byte, old []uint64) error {
	li := off / digest.LeafSize
	if _, err := s.b.tree.SetLeaf(li, b); err != nil {
		return fmt.Errorf("rehash leaf %d: %w", li, err)
	}
	first := off / sumBlock
	n := (len(b) + sumBlock - 1) / sumBlock
	if old == nil {
		var own [blocksPerLeaf]uint64
		if err := s.b.sums.Get(first, own[:n]); err != nil {
			return err
		}
		old = own[:n]
	}
	for j := range n {
		blk := b[j*sumBlock : min((j+1)*sumBlock, len(b))]
		v := sums.Sum(blk)
		if v == old[j] {
			if err := s.flush(); err != nil {
				return err
			}
			continue
		}
		s.patch[first+int64(j)] = v
		if at := off + int64(j*sumBlock); at < s.from() {
			s.applied.Add(at, blk) // blkwrite has it
			continue
		}
		s.blocks++
		if err := s.add(off+int64(j*sumBlock), blk); err != nil {
			return err
		}
	}
	return s.flush()
}

var zeroBlock [sumBlock]byte

// add queues blk, at off, for sending: into the ZERO run or the DATA run.
func (s *changedSender) add(off int64, blk []byte) error {
	if bytes.Equal(blk, zeroBlock[:len(blk)]) {
		if len(s.data) > 0 {
			if err := s.flushData(); err != nil {
				return err
			}
		}
		if s.zeroLen > 0 && s.zeroOff+s.zeroLen != off {
			if err := s.flushZero(); err != nil {
				return err
			}
		}
		if s.zeroLen == 0 {
			s.zeroOff = off
		}
		s.zeroLen += int64(len(blk))
		return nil
	}
	if err := s.flushZero(); err != nil {
		return err
	}
	if len(s.data) == 0 {
		s.runOff = off
	}
	s.data = append(s.data, blk...)
	return nil
}

// flush sends the pending DATA run and ZERO run: a block left unsent or
// the end of a leaf ends them (a DATA record never spans leaves, so it
// fits the stream's 64 KiB block size).
func (s *changedSender) flush() error {
	if err := s.flushData(); err != nil {
		return err
	}
	return s.flushZero()
}

func (s *changedSender) flushData() error {
	if len(s.data) == 0 {
		return nil
	}
	rw, err := s.writer()
	if err != nil {
		return err
	}
	err = rw.Data(s.runOff, s.data)
	s.data = s.data[:0]
	return err
}

func (s *changedSender) flushZero() error {
	if s.zeroLen == 0 {
		return nil
	}
	rw, err := s.writer()
	if err != nil {
		return err
	}
	err = rw.Zero(s.zeroOff, s.zeroLen)
	s.zeroLen = 0
	return err
}

// baseline is what the sender knows of BASE: its leaf map (as a Tree the
// run updates into SNAP's) and its 4 KiB block sums.
type baseline struct {
	root     [32]byte
	tree     *digest.Tree
	sums     *sums.Table
	sumsFile *os.File
}

func (b *baseline) close() {
	if b.sumsFile != nil {
		b.sumsFile.Close()
	}
}

// loadBaseline returns the map and sums kept when base was sent, after
// checking that they are base's: its identity and size, the map's root
// and a sample of its blocks against the sums. Without them (the first
// changed-block run after a full copy) it hashes base once, saying so.
func loadBaseline(dir state.Dir, name string, f *os.File, size int64, rep *progress.DD) (*baseline, error) {
	b, err := openBaseline(dir, name, f, size)
	if err == nil {
		return b, nil
	}
	rep.Note(fmt.Sprintf("no usable leaf map of %s (%v): reading all of it once to make one", ddmsg.Quote(name), err))
	if err := hashBase(dir, name, f, size); err != nil {
		return nil, fmt.Errorf("make the leaf map of %s: %w", ddmsg.Quote(name), err)
	}
	return openBaseline(dir, name, f, size)
}

func openBaseline(dir state.Dir, name string, f *os.File, size int64) (*baseline, error) {
	c, err := dir.LoadSent(name)
	if err != nil {
		return nil, err
	}
	id, err := state.Identify(f)
	if err != nil {
		return nil, err
	}
	if !c.Same(id) || c.Size != size || c.Alg != "blake3" {
		return nil, fmt.Errorf("the record %s is of another file, or %s changed since it was sent", dir.SentPath(name), ddmsg.Quote(name))
	}
	mb, err := os.ReadFile(dir.SentMapPath(name))
	if err != nil {
		return nil, err
	}
	m, err := digest.Unmarshal(mb)
	if err != nil {
		return nil, err
	}
	if m.Size != size || hex.EncodeToString(m.Root[:]) != c.Digest {
		return nil, fmt.Errorf("leaf map %s is not the one its record names", dir.SentMapPath(name))
	}
	t, err := m.Tree()
	if err != nil {
		return nil, err
	}
	sf, err := os.Open(dir.SentSumsPath(name))
	if err != nil {
		return nil, err
	}
	b := &baseline{root: m.Root, tree: t, sumsFile: sf}
	fi, err := sf.Stat()
	if err == nil {
		b.sums, err = sums.OpenTable(sf, fi.Size())
	}
	if err == nil && (b.sums.Header().Size != size || b.sums.Header().BlockSize != sumBlock) {
		err = fmt.Errorf("block sums %s are of %d bytes in %d-byte blocks", dir.SentSumsPath(name), b.sums.Header().Size, b.sums.Header().BlockSize)
	}
	if err == nil {
		err = sample(b.sums, f, size)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// sample compares 16 blocks of f, spread over it, with their kept sums: a
// base replaced by another file that kept its identity fails here.
func sample(t *sums.Table, f *os.File, size int64) error {
	n := sums.Blocks(size, sumBlock)
	var picks []int64
	for k := range int64(16) {
		i := k * (n - 1) / 15
		if n == 0 || k > 0 && i == (k-1)*(n-1)/15 {
			continue
		}
		picks = append(picks, i)
	}
	read := func(off int64) ([]byte, error) {
		buf := make([]byte, sumBlock)
		got, err := f.ReadAt(buf[:min(sumBlock, size-off)], off)
		if err != nil && !(err == io.EOF && int64(got) == size-off) {
			return buf[:got], fmt.Errorf("read %s at offset %d: %w", f.Name(), off, err)
		}
		return buf[:got], nil
	}
	_, err := checkPicks(t, picks, read, func(i int64) error {
		return fmt.Errorf("block %d of %s is not the one its kept sums describe", i, f.Name())
	})
	return err
}

// hashBase reads all of f and keeps its leaf map and block sums as its
// sent record. SaveSent writes the sums first: reading f for them hashes
// it for the map too.
func hashBase(dir state.Dir, name string, f *os.File, size int64) error {
	h := digest.New(digest.WithLeaves())
	defer h.Close()
	id, err := state.Identify(f)
	if err != nil {
		return err
	}
	c := state.Copy{Target: absPath(name), Size: size, Alg: "blake3", Time: time.Now()}
	c.SetID(id)
	writeSums := func(w io.Writer) error {
		sw, err := sums.NewWriter(w, sumBlock, size)
		if err != nil {
			return err
		}
		buf := make([]byte, readPiece)
		for off := int64(0); off < size; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
			if n > 0 {
				h.Write(buf[:n])
				sw.Write(buf[:n])
				off += int64(n)
			}
			if err != nil && !(err == io.EOF && off == size) {
				return fmt.Errorf("read %s at offset %d: %w", f.Name(), off, err)
			}
		}
		return sw.Close()
	}
	writeMap := func(w io.Writer) error {
		root := h.Sum()
		m := &digest.Map{Size: size, Root: root, Leaves: h.Leaves()}
		mb, err := m.Marshal()
		if err != nil {
			return err
		}
		c.Digest = hex.EncodeToString(root[:])
		_, err = w.Write(mb)
		return err
	}
	return dir.SaveSent(&c, writeMap, writeSums)
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

// save keeps SNAP's leaf map (the tree, now SNAP's) and its block sums
// (BASE's, patched) as SNAP's sent record, for the run whose base SNAP
// becomes.
func (b *baseline) save(dir state.Dir, in *ddcopy.Input, root [32]byte, patch map[int64]uint64, id [16]byte) error {
	m := &digest.Map{Size: b.tree.Size(), Root: root, Leaves: b.tree.Leaves()}
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	ident, err := state.Identify(in.F)
	if err != nil {
		return err
	}
	c := state.Copy{Target: absPath(in.Name), Size: m.Size, Alg: "blake3",
		Digest: hex.EncodeToString(root[:]), StreamID: hex.EncodeToString(id[:]), Time: time.Now()}
	c.SetID(ident)
	return dir.SaveSent(&c, writeBytes(mb), func(w io.Writer) error { return b.sums.CopyPatched(w, patch) })
}

// absPath is p made absolute, as records name their files.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
