package frame

import (
	"crypto/sha256"
	"hash"
	"io"

	"github.com/blkpipe/blkpipe/internal/digest"
)

// summer computes END's whole-source digest. close releases its
// goroutines, if any; it may follow sum and is needed after an error.
type summer interface {
	io.Writer
	sum() [32]byte
	close()
}

// newSummer returns a summer for alg (valid); BLAKE3 hashes on workers
// goroutines, SHA-256 in the caller's; leaves keeps BLAKE3's leaves.
func newSummer(alg DigestAlg, workers int, leaves bool) summer {
	if alg == DigestBLAKE3 {
		opts := []digest.Option{digest.WithWorkers(workers)}
		if leaves {
			opts = append(opts, digest.WithLeaves())
		}
		return blake3Summer{digest.New(opts...)}
	}
	return sha256Summer{sha256.New()}
}

type sha256Summer struct{ hash.Hash }

func (s sha256Summer) sum() (d [32]byte) {
	s.Sum(d[:0])
	return d
}

func (sha256Summer) close() {}

type blake3Summer struct{ *digest.Hasher }

func (s blake3Summer) sum() [32]byte { return s.Sum() }
func (s blake3Summer) close()        { s.Close() }
