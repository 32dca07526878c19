package frame

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressor compresses one block at a time. Each worker goroutine owns
// one, so the lz4Encoder's hash table and the zstd encoder's state are
// reused from block to block and never shared.
type compressor struct {
	codec Codec
	lz4   lz4Encoder
	zstd  *zstd.Encoder
}

func newCompressor(c Codec, level, blockSize int) (*compressor, error) {
	cp := &compressor{codec: c}
	if c == CodecZstd {
		// No match reaches past the block, so a window of the block
		// size loses nothing and bounds the encoder's history buffer.
		window := zstd.MinWindowSize
		for window < blockSize {
			window *= 2
		}
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(window),
			zstd.WithLowerEncoderMem(true),
			// Each record carries a CRC-32C of its decoded bytes, which
			// also checks the decoder; zstd's own checksum would be a
			// second one.
			zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, fmt.Errorf("zstd encoder level %d: %w", level, err)
		}
		cp.zstd = enc
	}
	return cp, nil
}

// compress appends the compressed form of src to dst and reports whether
// it is smaller than src. When it is not, the caller stores src raw and
// ignores what was appended.
func (cp *compressor) compress(dst, src []byte) ([]byte, bool) {
	switch cp.codec {
	case CodecLZ4:
		// A destination one byte shorter than src makes the compressor
		// give up (n == 0) exactly when compression would not shrink the
		// block, so incompressible blocks cost no large buffer.
		start := len(dst)
		if cap(dst)-start < len(src)-1 {
			return dst, false
		}
		out := dst[start : start+len(src)-1]
		n := cp.lz4.compress(src, out)
		if n == 0 || n >= len(src) {
			return dst, false
		}
		return dst[:start+n], true
	case CodecZstd:
		start := len(dst)
		dst = cp.zstd.EncodeAll(src, dst)
		return dst, len(dst)-start < len(src)
	}
	return dst, false
}

func (cp *compressor) close() {
	if cp.zstd != nil {
		cp.zstd.Close()
	}
}

// decompressor decodes one payload at a time into a caller's buffer; each
// decode goroutine owns one.
type decompressor struct {
	codec Codec
	zstd  *zstd.Decoder
}

func newDecompressor(c Codec) (*decompressor, error) {
	d := &decompressor{codec: c}
	if c == CodecZstd {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			// DecodeAll decodes into the caller's block buffer and never
			// past its capacity, so a frame whose content (declared or
			// not) exceeds a block fails without the decoder allocating.
			// Its history is that buffer: a window up to the largest block
			// size costs nothing more, and frames made by zstd from a
			// pipe (no content size, a window larger than a small block)
			// decode; the minimum window of 1 KiB made a 512-byte block
			// size unusable when the limit was the block size.
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(MaxBlockSize),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		d.zstd = dec
	}
	return d, nil
}

// decompress decodes src into dst[:0] (cap(dst) ≥ want) and checks that it
// yields exactly want bytes.
func (d *decompressor) decompress(dst, src []byte, want int) ([]byte, error) {
	switch d.codec {
	case CodecLZ4:
		n, err := lz4.UncompressBlock(src, dst[:want])
		if err != nil {
			return nil, fmt.Errorf("lz4: %v", err)
		}
		if n != want {
			return nil, fmt.Errorf("decoded %d bytes, record says %d", n, want)
		}
		return dst[:n], nil
	case CodecZstd:
		out, err := d.zstd.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if len(out) != want {
			return nil, fmt.Errorf("decoded %d bytes, record says %d", len(out), want)
		}
		return out, nil
	}
	return nil, fmt.Errorf("compressed record but codec %v", d.codec)
}

func (d *decompressor) close() {
	if d.zstd != nil {
		d.zstd.Close()
	}
}
