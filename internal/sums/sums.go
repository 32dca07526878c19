// Package sums reads and writes blkpipe's block-sums stream: a short
// header, one 64-bit xxh3 digest per block of a device or file, and a
// trailer that counts the digests and checks the whole stream. blkcat --sums
// writes it on the target's side; blkcat --against reads it on the source's
// side and sends only the blocks whose digest differs. docs/FORMAT.md
// ("Block sums") is the specification.
package sums

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/zeebo/xxh3"
)

// Format constants (docs/FORMAT.md, "Block sums").
const (
	Magic      = "\x89BLKS\r\n\x1a" // first 8 bytes of a sums stream
	Version    = 1                  // format version written and read
	HeaderLen  = 40                 // header length in version 1
	TrailerLen = 16                 // trailer length
	DigestLen  = 8                  // bytes per block digest
	AlgXXH3    = 1                  // digest_alg: XXH3-64, seed 0

	MinBlockSize = 512      // smallest block size
	MaxBlockSize = 16 << 20 // largest block size
	// DefaultBlockSize is 4 KiB: the page and filesystem block size, so
	// scattered small writes cost about their own size on the wire.
	DefaultBlockSize = 4096
)

// trailerTag closes the trailer.
const trailerTag = "SEND"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors; Reader errors wrap one of them.
var (
	// ErrBadMagic means the input is not a sums stream.
	ErrBadMagic = errors.New("not a block-sums stream (bad magic)")
	// ErrVersion means a format version this package does not read.
	ErrVersion = errors.New("unsupported block-sums version")
	// ErrHeader means a header field is out of range or its checksum does
	// not match, or a Writer was asked for such a value.
	ErrHeader = errors.New("invalid block-sums header")
	// ErrTruncated means the stream ended before its trailer.
	ErrTruncated = errors.New("block-sums stream truncated")
	// ErrChecksum means the trailer's count or CRC-32C does not match the
	// stream: digests were reordered, lost, duplicated or damaged.
	ErrChecksum = errors.New("block-sums checksum mismatch")
	// ErrTrailingData means bytes follow the trailer.
	ErrTrailingData = errors.New("data after block-sums trailer")
	// ErrSize is returned by Writer.Close when the bytes fed differ from
	// the size declared in the header.
	ErrSize = errors.New("source size mismatch")
)

// Sum is the digest of one block: XXH3-64 with seed 0 of its bytes.
func Sum(block []byte) uint64 { return xxh3.Hash(block) }

// Blocks returns the number of digests for size bytes in blocks of bs.
func Blocks(size int64, bs int) int64 { return (size + int64(bs) - 1) / int64(bs) }

// Header is a sums stream's decoded header.
type Header struct {
	Version   uint16
	BlockSize int   // bytes per digest (the last block may be shorter)
	Size      int64 // size of the summed device or file
}

// Writer writes a sums stream. Feed it the device's bytes in order with
// Write, then Close. It keeps the first error and returns it from every later
// call. Its methods must be called from one goroutine.
type Writer struct {
	bw    *bufio.Writer
	crc   hash.Hash32
	bs    int
	size  int64
	fed   int64
	block []byte // partial block
	ent   [DigestLen]byte
	count uint64
	err   error
}

// NewWriter writes the header for a device of size bytes summed in blocks
// of blockSize (a multiple of 512 from MinBlockSize to MaxBlockSize) to w.
func NewWriter(w io.Writer, blockSize int, size int64) (*Writer, error) {
	if blockSize < MinBlockSize || blockSize > MaxBlockSize || blockSize%512 != 0 {
		return nil, fmt.Errorf("%w: block size %d (want a multiple of 512 from %d to %d)", ErrHeader, blockSize, MinBlockSize, MaxBlockSize)
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: size %d", ErrHeader, size)
	}
	sw := &Writer{bw: bufio.NewWriterSize(w, 256<<10), crc: crc32.New(castagnoli), bs: blockSize, size: size, block: make([]byte, 0, blockSize)}
	sw.put(encodeHeader(Header{Version: Version, BlockSize: blockSize, Size: size}))
	return sw, sw.err
}

func encodeHeader(h Header) []byte {
	b := make([]byte, HeaderLen)
	copy(b, Magic)
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint16(b[10:], HeaderLen)
	b[12] = AlgXXH3
	binary.LittleEndian.PutUint32(b[16:], uint32(h.BlockSize))
	binary.LittleEndian.PutUint64(b[24:], uint64(h.Size))
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], castagnoli))
	return b
}

func (sw *Writer) put(b []byte) {
	if sw.err != nil {
		return
	}
	sw.crc.Write(b)
	_, sw.err = sw.bw.Write(b)
}

func (sw *Writer) emit(block []byte) {
	binary.LittleEndian.PutUint64(sw.ent[:], Sum(block))
	sw.put(sw.ent[:])
	sw.count++
}

// Write feeds the next len(p) bytes of the device. It does not keep p.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.fed+int64(len(p)) > sw.size {
		sw.err = fmt.Errorf("%w: more than the %d bytes declared", ErrSize, sw.size)
		return 0, sw.err
	}
	n := len(p)
	sw.fed += int64(n)
	if len(sw.block) > 0 {
		k := min(len(p), sw.bs-len(sw.block))
		sw.block = append(sw.block, p[:k]...)
		p = p[k:]
		if len(sw.block) == sw.bs {
			sw.emit(sw.block)
			sw.block = sw.block[:0]
		}
	}
	for len(p) >= sw.bs {
		sw.emit(p[:sw.bs])
		p = p[sw.bs:]
	}
	sw.block = append(sw.block, p...)
	if sw.err != nil {
		return 0, sw.err
	}
	return n, nil
}

// Close sums the last, short block, writes the trailer and flushes. It
// fails with ErrSize, writing no trailer, unless exactly the declared size
// was fed. It does not close the underlying writer.
func (sw *Writer) Close() error {
	if sw.err != nil {
		return sw.err
	}
	if sw.fed != sw.size {
		sw.err = fmt.Errorf("%w: %d bytes fed, %d declared", ErrSize, sw.fed, sw.size)
		return sw.err
	}
	if len(sw.block) > 0 {
		sw.emit(sw.block)
		sw.block = sw.block[:0]
	}
	t := make([]byte, TrailerLen)
	binary.LittleEndian.PutUint64(t, sw.count)
	binary.LittleEndian.PutUint32(t[8:], sw.crc.Sum32())
	copy(t[12:], trailerTag)
	if sw.err == nil {
		_, sw.err = sw.bw.Write(t)
	}
	if sw.err == nil {
		sw.err = sw.bw.Flush()
	}
	if sw.err == nil {
		sw.err = errClosed
		return nil
	}
	return sw.err
}

var errClosed = errors.New("sums writer closed")

// Encode returns the sums stream of a device of size bytes in blocks of
// blockSize whose block digests are ds, Blocks(size, blockSize) of them:
// the bytes a Writer fed the device would write.
func Encode(blockSize int, size int64, ds []uint64) ([]byte, error) {
	if n := Blocks(size, blockSize); int64(len(ds)) != n {
		return nil, fmt.Errorf("%w: %d digests for %d blocks", ErrSize, len(ds), n)
	}
	var b bytes.Buffer
	sw, err := NewWriter(&b, blockSize, size)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		binary.LittleEndian.PutUint64(sw.ent[:], d)
		sw.put(sw.ent[:])
		sw.count++
	}
	sw.fed = size
	if err := sw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Decode reads a whole sums stream (checked as Reader checks it) and
// returns its header and digests.
func Decode(b []byte) (Header, []uint64, error) {
	sr, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return Header{}, nil, err
	}
	h := sr.Header()
	ds := make([]uint64, 0, min(Blocks(h.Size, h.BlockSize), int64(len(b)/DigestLen)))
	for {
		d, err := sr.Next()
		if err == io.EOF {
			return h, ds, nil
		}
		if err != nil {
			return Header{}, nil, err
		}
		ds = append(ds, d)
	}
}

// Reader reads a sums stream, checking everything the format allows: the
// header before anything else, then the trailer's count and CRC-32C after
// the last digest, and that nothing follows. Its methods must be called from
// one goroutine.
type Reader struct {
	br   *bufio.Reader
	crc  hash.Hash32
	h    Header
	n    int64 // digests expected
	i    int64 // digests returned
	pos  int64 // stream offset, for messages
	ent  [DigestLen]byte
	err  error
	done bool
}

// NewReader reads and validates the header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	b := make([]byte, HeaderLen)
	if n, err := io.ReadFull(br, b); err != nil {
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("read block-sums header: %w", err)
		}
		if n >= len(Magic) && string(b[:len(Magic)]) == Magic {
			return nil, fmt.Errorf("%w: header: %v", ErrTruncated, err)
		}
		return nil, ErrBadMagic
	}
	if string(b[:len(Magic)]) != Magic {
		return nil, ErrBadMagic
	}
	h := Header{Version: binary.LittleEndian.Uint16(b[8:])}
	if h.Version != Version {
		return nil, fmt.Errorf("%w %d (this blkpipe reads %d)", ErrVersion, h.Version, Version)
	}
	if got, want := binary.LittleEndian.Uint32(b[36:]), crc32.Checksum(b[:36], castagnoli); got != want {
		return nil, fmt.Errorf("%w: header checksum mismatch", ErrHeader)
	}
	if hl := binary.LittleEndian.Uint16(b[10:]); hl != HeaderLen {
		return nil, fmt.Errorf("%w: header_len %d", ErrHeader, hl)
	}
	if b[12] != AlgXXH3 {
		return nil, fmt.Errorf("%w: unknown digest algorithm %d", ErrHeader, b[12])
	}
	if b[13] != 0 || b[14] != 0 || b[15] != 0 || binary.LittleEndian.Uint32(b[20:]) != 0 || binary.LittleEndian.Uint32(b[32:]) != 0 {
		return nil, fmt.Errorf("%w: reserved bytes not zero", ErrHeader)
	}
	h.BlockSize = int(binary.LittleEndian.Uint32(b[16:]))
	if h.BlockSize < MinBlockSize || h.BlockSize > MaxBlockSize || h.BlockSize%512 != 0 {
		return nil, fmt.Errorf("%w: block size %d", ErrHeader, h.BlockSize)
	}
	h.Size = int64(binary.LittleEndian.Uint64(b[24:]))
	if h.Size < 0 {
		return nil, fmt.Errorf("%w: size %d", ErrHeader, h.Size)
	}
	sr := &Reader{br: br, crc: crc32.New(castagnoli), h: h, n: Blocks(h.Size, h.BlockSize), pos: HeaderLen}
	sr.crc.Write(b)
	return sr, nil
}

// Header returns the validated header.
func (sr *Reader) Header() Header { return sr.h }

// Next returns the digest of the next block. After the last block it reads
// and checks the trailer and returns io.EOF. Errors are sticky.
func (sr *Reader) Next() (uint64, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	if sr.i == sr.n {
		sr.err = sr.finish()
		return 0, sr.err
	}
	if _, err := io.ReadFull(sr.br, sr.ent[:]); err != nil {
		sr.err = sr.readErr(err, fmt.Sprintf("digest of block %d of %d", sr.i, sr.n))
		return 0, sr.err
	}
	sr.crc.Write(sr.ent[:])
	sr.i++
	sr.pos += DigestLen
	return binary.LittleEndian.Uint64(sr.ent[:]), nil
}

func (sr *Reader) readErr(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: ends at byte %d, in the %s", ErrTruncated, sr.pos, what)
	}
	return fmt.Errorf("read block sums at byte %d: %w", sr.pos, err)
}

// finish checks the trailer and that nothing follows it.
func (sr *Reader) finish() error {
	if sr.done {
		return io.EOF
	}
	t := make([]byte, TrailerLen)
	if _, err := io.ReadFull(sr.br, t); err != nil {
		return sr.readErr(err, "trailer")
	}
	if string(t[12:]) != trailerTag {
		return fmt.Errorf("%w: no trailer at byte %d (more digests than a %d-byte device has?)", ErrChecksum, sr.pos, sr.h.Size)
	}
	if c := binary.LittleEndian.Uint64(t); c != uint64(sr.n) {
		return fmt.Errorf("%w: trailer counts %d digests, the stream has %d", ErrChecksum, c, sr.n)
	}
	if got, want := binary.LittleEndian.Uint32(t[8:]), sr.crc.Sum32(); got != want {
		return fmt.Errorf("%w: stream CRC-32C %08x, trailer says %08x (digests reordered or damaged)", ErrChecksum, want, got)
	}
	if _, err := sr.br.ReadByte(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w at byte %d", ErrTrailingData, sr.pos+TrailerLen)
		}
		return fmt.Errorf("read block sums after the trailer: %w", err)
	}
	sr.done = true
	return io.EOF
}
