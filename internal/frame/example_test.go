package frame_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/frame"
)

// A 3 MiB source (a text block, two zero blocks, a short text tail) framed
// with lz4 and read back: the zero blocks travel as one ZERO record, and
// END carries the source's BLAKE3-256 (the default digest, as b3sum prints
// it), which the Reader has verified.
func Example() {
	text := bytes.Repeat([]byte("blkpipe copies block devices\n"), 36158)[:1<<20]
	src := append(append(bytes.Clone(text), make([]byte, 2<<20)...), text[:1000]...)

	var stream bytes.Buffer
	w, err := frame.NewWriter(&stream, frame.WithCodec(frame.CodecLZ4, 0), frame.WithSourceSize(int64(len(src))))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d source bytes framed in under 8 KiB: %v\n", len(src), stream.Len() < 8<<10)

	r, err := frame.NewReader(&stream)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		switch rec.Type {
		case frame.Data, frame.Zero:
			fmt.Printf("%-4v offset %7d length %7d\n", rec.Type, rec.Offset, rec.Length)
		case frame.End:
			fmt.Printf("END  size %d, %d records, verified %v %v, b3sum ok %v\n",
				rec.Offset, rec.Records, rec.Verified, r.Header().DigestAlg, rec.Digest == digest.Sum256(src))
		}
	}
	// Output:
	// 3146728 source bytes framed in under 8 KiB: true
	// DATA offset       0 length 1048576
	// ZERO offset 1048576 length 2097152
	// DATA offset 3145728 length    1000
	// END  size 3146728, 3 records, verified true blake3, b3sum ok true
}
