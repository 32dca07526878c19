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
	// writeLent hashes p, which the caller lent the Writer under ref;
	// it reports false when the summer does not take lent bytes (SHA-256,
	// hashed in order by the caller as it sends).
	writeLent(p []byte, ref *lent) bool
}

// newSummer returns a summer for alg (valid); BLAKE3 hashes on workers
// goroutines, SHA-256 in the caller's; leaves keeps BLAKE3's leaves; size
// is the source's size if known (else -1), which lets BLAKE3 hash every
// lent piece but the source's last where it is.
func newSummer(alg DigestAlg, workers int, leaves bool, size int64) summer {
	if alg == DigestBLAKE3 {
		opts := []digest.Option{digest.WithWorkers(workers), digest.WithSize(size)}
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

func (sha256Summer) writeLent([]byte, *lent) bool { return false }

type blake3Summer struct{ *digest.Hasher }

func (s blake3Summer) sum() [32]byte { return s.Sum() }
func (s blake3Summer) close()        { s.Close() }

// writeLent hashes the whole pieces of p where they are, holding ref until
// each is hashed, instead of copying them.
func (s blake3Summer) writeLent(p []byte, ref *lent) bool {
	s.WriteLent(p, func() { ref.n.Add(1) }, ref.done)
	return true
}
