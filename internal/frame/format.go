// Package frame reads and writes blkpipe's framed stream: a header, then
// DATA, ZERO and END records addressed by source offset, each checked with
// CRC-32C, ending with a digest of the whole source (BLAKE3-256 by
// default, or SHA-256). docs/FORMAT.md is the specification; this package
// is its reference implementation.
//
// A Writer is fed the source sequentially and cuts it into blocks, sends
// all-zero blocks as ZERO runs, compresses the rest with lz4 or zstd on
// several goroutines (output order and bytes do not depend on how many), and
// writes END on Close. A Reader validates the header before anything else
// and returns the records in order, verifying checksums, lengths, order,
// limits and, when it can, the whole-source digest.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Magic is the first 8 bytes of every framed stream. A receiver that does
// not see it treats its input as raw data.
const Magic = "\x89BLKP\r\n\x1a"

// Version is the format version this package writes and reads.
const Version = 1

// Sizes and limits of the format (docs/FORMAT.md).
const (
	HeaderLen       = 64       // header length written by this version
	BaseHeaderLen   = 112      // header length with FlagBase
	MaxHeaderLen    = 4096     // largest header_len a reader accepts
	RecordHeaderLen = 32       // bytes before each record's payload
	EndPayloadLen   = 48       // END payload: records, covered, digest
	MinBlockSize    = 512      // smallest block size
	MaxBlockSize    = 16 << 20 // largest block size: caps every allocation
	// DefaultBlockSize is the Writer's block size unless WithBlockSize.
	DefaultBlockSize = 1 << 20
)

// Header flags. Bits 0–15 are critical (a reader rejects unknown ones),
// bits 16–31 optional (ignored when unknown).
const (
	// FlagDelta says records may leave gaps: the stream carries only some
	// blocks of the source.
	FlagDelta uint32 = 1 << 0
	// FlagBase says the header names the copy the target must hold
	// before the stream is applied (Header.BaseSize, BaseDigest); set
	// only with FlagDelta, in a header of BaseHeaderLen bytes.
	FlagBase uint32 = 1 << 1

	knownCritical uint32 = FlagDelta | FlagBase
	criticalMask  uint32 = 0xFFFF
)

// ChecksumCRC32C is the record checksum algorithm (the only one in
// version 1).
const ChecksumCRC32C = 1

// DigestAlg is the algorithm of END's whole-source digest (the header's
// digest_alg). Both give 32 bytes, the value sha256sum or b3sum prints.
type DigestAlg uint8

// Digest algorithms.
const (
	DigestSHA256 DigestAlg = 1 // SHA-256, one serial pass
	DigestBLAKE3 DigestAlg = 2 // BLAKE3-256, hashed on all cores

	// DefaultDigest is the Writer's digest unless WithDigest.
	DefaultDigest = DigestBLAKE3
)

// String returns "sha256", "blake3" or "digest(N)": the names of
// sha256sum and b3sum, as blkwrite prints them.
func (a DigestAlg) String() string {
	switch a {
	case DigestSHA256:
		return "sha256"
	case DigestBLAKE3:
		return "blake3"
	}
	return fmt.Sprintf("digest(%d)", uint8(a))
}

func (a DigestAlg) valid() bool { return a == DigestSHA256 || a == DigestBLAKE3 }

// ParseDigest parses a digest name as given to blkcat --digest: "sha256"
// or "blake3".
func ParseDigest(s string) (DigestAlg, error) {
	switch s {
	case "sha256":
		return DigestSHA256, nil
	case "blake3":
		return DigestBLAKE3, nil
	}
	return 0, fmt.Errorf("digest %q: want sha256 or blake3", s)
}

// Codec says how compressed DATA payloads are encoded.
type Codec uint8

// Codecs.
const (
	CodecNone Codec = 0 // payloads are stored raw
	CodecLZ4  Codec = 1 // one LZ4 block (no frame) per record
	CodecZstd Codec = 2 // one zstd frame per record
)

// codecNames are the codecs' names, as -z takes them (ParseCodec).
var codecNames = [...]string{CodecNone: "none", CodecLZ4: "lz4", CodecZstd: "zstd"}

// String returns "none", "lz4", "zstd" or "codec(N)".
func (c Codec) String() string {
	if c.valid() {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

func (c Codec) valid() bool { return c <= CodecZstd }

// Default and accepted levels per codec. lz4's level is ignored (the fast
// block compressor is the only one used); zstd's maps onto klauspost's
// levels with zstd.EncoderLevelFromZstd. The default is level 1, the
// fastest encoder: on a real file-system image its output is as small as
// `zstd -1`'s and it keeps up with a gigabit link on two cores; level 3
// (the zstd tool's default) is 4 % smaller and about a third slower.
const (
	DefaultZstdLevel = 1
	MaxZstdLevel     = 22
)

// ParseCodec parses a codec name as given to blkcat -z: "none", "lz4",
// "zstd" or "zstd:N" with 1 ≤ N ≤ 22. It returns the codec and its level
// (0 for none and lz4, DefaultZstdLevel for plain "zstd").
func ParseCodec(s string) (Codec, int, error) {
	name, lvl, hasLevel := strings.Cut(s, ":")
	switch name {
	case "none", "lz4":
		if hasLevel {
			return 0, 0, fmt.Errorf("codec %q: %s takes no level", s, name)
		}
		if name == "lz4" {
			return CodecLZ4, 0, nil
		}
		return CodecNone, 0, nil
	case "zstd":
		if !hasLevel {
			return CodecZstd, DefaultZstdLevel, nil
		}
		n, err := strconv.Atoi(lvl)
		if err != nil || n < 1 || n > MaxZstdLevel {
			return 0, 0, fmt.Errorf("codec %q: zstd level must be 1 to %d", s, MaxZstdLevel)
		}
		return CodecZstd, n, nil
	}
	return 0, 0, fmt.Errorf("codec %q: want none, lz4, zstd or zstd:LEVEL", s)
}

// Header is the decoded stream header.
type Header struct {
	Version     uint16    // format version, 1
	Flags       uint32    // FlagDelta and future flags
	BlockSize   uint32    // cap on every DATA record's length
	Codec       Codec     // codec of compressed payloads
	Level       int8      // codec level the writer used (informational)
	DigestAlg   DigestAlg // algorithm of END's whole-source digest
	SourceSize  int64     // source size in bytes, -1 if unknown
	StartOffset int64     // source offset the stream starts at (resume)
	StreamID    [16]byte  // random per stream, mixed into record CRCs

	// With FlagBase: the size and digest (of DigestAlg) of the copy the
	// target must hold before the stream is applied.
	BaseSize   int64
	BaseDigest [32]byte
}

// Delta reports whether the stream may leave gaps (FlagDelta).
func (h Header) Delta() bool { return h.Flags&FlagDelta != 0 }

// Base reports whether the header names the target's expected copy
// (FlagBase).
func (h Header) Base() bool { return h.Flags&FlagBase != 0 }

// Len returns the header's length on the wire.
func (h Header) Len() int {
	if h.Base() {
		return BaseHeaderLen
	}
	return HeaderLen
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// marshal returns the version 1 header: 64 bytes, or BaseHeaderLen with
// FlagBase.
func (h Header) marshal() []byte {
	n := h.Len()
	b := make([]byte, n)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint16(b[8:], h.Version)
	le.PutUint16(b[10:], uint16(n))
	le.PutUint32(b[12:], h.Flags)
	le.PutUint32(b[16:], h.BlockSize)
	b[20] = byte(h.Codec)
	b[21] = byte(h.Level)
	b[22] = ChecksumCRC32C
	b[23] = byte(h.DigestAlg)
	le.PutUint64(b[24:], uint64(h.SourceSize))
	le.PutUint64(b[32:], uint64(h.StartOffset))
	copy(b[40:56], h.StreamID[:])
	if h.Base() {
		le.PutUint64(b[60:], uint64(h.BaseSize))
		copy(b[68:100], h.BaseDigest[:])
	}
	le.PutUint32(b[n-4:], crc(b[:n-4]))
	return b
}

// validate checks the header's fields against the format's limits. It is
// used by both the Writer (on its options) and the Reader.
func (h Header) validate() error {
	switch {
	case h.Flags&criticalMask&^knownCritical != 0:
		return fmt.Errorf("%w: unknown critical flags %#x", ErrHeader, h.Flags&criticalMask&^knownCritical)
	case h.BlockSize < MinBlockSize || h.BlockSize > MaxBlockSize || h.BlockSize%512 != 0:
		return fmt.Errorf("%w: block size %d not a multiple of 512 in [%d, %d]", ErrHeader, h.BlockSize, MinBlockSize, MaxBlockSize)
	case !h.Codec.valid():
		return fmt.Errorf("%w: unknown %v", ErrHeader, h.Codec)
	case !h.DigestAlg.valid():
		return fmt.Errorf("%w: unknown digest algorithm %d", ErrHeader, uint8(h.DigestAlg))
	case h.SourceSize < -1:
		return fmt.Errorf("%w: source size %d", ErrHeader, h.SourceSize)
	case h.StartOffset < 0 || (h.SourceSize >= 0 && h.StartOffset > h.SourceSize):
		return fmt.Errorf("%w: start offset %d outside source of size %d", ErrHeader, h.StartOffset, h.SourceSize)
	case h.Base() && !h.Delta():
		return fmt.Errorf("%w: base flag without the delta flag", ErrHeader)
	case h.Base() && h.BaseSize < 0:
		return fmt.Errorf("%w: base size %d", ErrHeader, h.BaseSize)
	}
	return nil
}

// Record types (docs/FORMAT.md). Lower-case letters are ancillary records,
// which readers skip unless they know them: typeMark is a progress mark
// of a delta stream.
const (
	typeData byte = 'D'
	typeZero byte = 'Z'
	typeEnd  byte = 'E'
	typeMark byte = 'p'

	rflagCompressed byte = 1
)

// RecordType says what a Record is.
type RecordType uint8

// Record types returned by Reader.Next.
const (
	Data RecordType = iota + 1 // Length source bytes at Offset, in Data
	Zero                       // Length zero bytes at Offset
	End                        // end of stream; Offset is the source size

	// mark is a progress mark inside the Reader: the stream has passed
	// Offset. Next never returns it.
	mark RecordType = 255
)

// String returns "DATA", "ZERO" or "END".
func (t RecordType) String() string {
	switch t {
	case Data:
		return "DATA"
	case Zero:
		return "ZERO"
	case End:
		return "END"
	case mark:
		return "progress mark"
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// recHeader is a decoded 32-byte record header.
type recHeader struct {
	typ        byte
	flags      byte
	reserved   uint16
	storedLen  uint32
	offset     int64
	length     int64
	payloadCRC uint32
}

// put writes the record header into b[:32], with its CRC salted by id.
func (r *recHeader) put(b []byte, id *[16]byte) {
	le := binary.LittleEndian
	b[0], b[1] = r.typ, r.flags
	le.PutUint16(b[2:], r.reserved)
	le.PutUint32(b[4:], r.storedLen)
	le.PutUint64(b[8:], uint64(r.offset))
	le.PutUint64(b[16:], uint64(r.length))
	le.PutUint32(b[24:], r.payloadCRC)
	le.PutUint32(b[28:], recordCRC(b[:28], id))
}

func recordCRC(b []byte, id *[16]byte) uint32 {
	return crc32.Update(crc32.Checksum(id[:], castagnoli), castagnoli, b)
}

// Sentinel errors. Reader errors wrap one of them and name the stream
// offset (and, for records, the source offset) where the stream failed;
// test with errors.Is.
var (
	// ErrBadMagic means the input does not start with Magic: it is not a
	// framed stream (a receiver treats it as raw data).
	ErrBadMagic = errors.New("not a framed stream (bad magic)")
	// ErrVersion means the stream's format version is not one this
	// package reads.
	ErrVersion = errors.New("unsupported format version")
	// ErrHeaderChecksum means the header's CRC-32C does not match: the
	// header was damaged.
	ErrHeaderChecksum = errors.New("header checksum mismatch")
	// ErrHeader means a header field is out of range or unknown (block
	// size, codec, algorithms, critical flags, sizes), or a Writer option
	// asked for such a value.
	ErrHeader = errors.New("invalid header")
	// ErrTruncated means the input ended before the END record: the copy
	// is incomplete.
	ErrTruncated = errors.New("stream truncated")
	// ErrChecksum means a record header's or payload's CRC-32C does not
	// match: the stream was damaged in transit or storage.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrCorrupt means a record is malformed: unknown type, bad flags or
	// reserved bytes, a payload that does not decode to its declared
	// length, or END counts that disagree with the stream. Typically this
	// indicates wrong or corrupted input.
	ErrCorrupt = errors.New("corrupt record")
	// ErrTooLarge means a record exceeds its cap (block size); it is
	// detected before the payload is read or any buffer grows.
	ErrTooLarge = errors.New("record too large")
	// ErrRange means a record lies outside the declared source, or its
	// offset and length overflow.
	ErrRange = errors.New("record outside source")
	// ErrOrder means records overlap, go backwards, or leave a gap in a
	// stream without FlagDelta.
	ErrOrder = errors.New("records out of order")
	// ErrDigest means the digest of the source (SHA-256 or BLAKE3, as
	// the header says) does not match END: the data written differs from
	// the source read.
	ErrDigest = errors.New("source digest mismatch")
	// ErrNoBase is returned by a base (WithBase) that decided, once the
	// target was open, not to serve the gaps: the Reader then returns the
	// stream unverified, as without a base, for a caller that verifies
	// it another way (blkwrite from its digest map).
	ErrNoBase = errors.New("no base: verified by the caller")
	// ErrTrailingData means bytes follow the END record.
	ErrTrailingData = errors.New("data after END record")
	// ErrSourceSize is returned by the Writer when the source fed does
	// not match WithSourceSize (the source shrank or grew).
	ErrSourceSize = errors.New("source size mismatch")
	// ErrClosed is returned by a Writer used after Close.
	ErrClosed = errors.New("writer closed")
)
