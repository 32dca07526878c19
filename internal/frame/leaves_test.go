package frame

import (
	"bytes"
	"io"
	"testing"

	"github.com/blkpipe/blkpipe/internal/digest"
)

// noBase is a base that declines to serve gaps.
type noBase struct{}

func (noBase) ReadAt([]byte, int64) (int, error) { return 0, ErrNoBase }

// readEnd reads a stream to END and returns it and the Reader.
func readEnd(t *testing.T, stream []byte, opts ...ReaderOption) (Record, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(stream), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == End {
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after END: %v", err)
			}
			return rec, r
		}
	}
}

// TestLeaves: a Reader WithLeaves returns the source's leaf chaining
// values after a verified END, for a full stream and a delta read against
// its base; none for SHA-256, without the option, or unverified.
func TestLeaves(t *testing.T) {
	const bs = 64 << 10
	old := mixed(3<<20 + 777)
	cur := bytes.Clone(old)
	cur[5*bs+3] ^= 1
	_, want := digest.Leaves(cur)
	full := encode(t, cur, WithSourceSize(int64(len(cur))))
	changed := func(off int64, block []byte) bool { return !bytes.Equal(block, old[off:off+int64(len(block))]) }
	delta := encode(t, cur, WithBlockSize(bs), WithFilter(changed), WithSourceSize(int64(len(cur))))

	for _, tc := range []struct {
		name   string
		stream []byte
		opts   []ReaderOption
		leaves bool
	}{
		{"full", full, []ReaderOption{WithLeaves()}, true},
		{"delta", delta, []ReaderOption{WithLeaves(), WithBase(bytes.NewReader(old))}, true},
		{"no-option", full, nil, false},
		{"no-verify", full, []ReaderOption{WithLeaves(), WithVerify(false)}, false},
		{"sha256", encode(t, cur, WithDigest(DigestSHA256)), []ReaderOption{WithLeaves()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := readEnd(t, tc.stream, tc.opts...)
			got := r.Leaves()
			if !tc.leaves {
				if got != nil {
					t.Fatalf("%d leaves, want none", len(got))
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d leaves, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("leaf %d differs", i)
				}
			}
		})
	}
}

// TestNoBase: a base answering ErrNoBase makes a delta's END unverified,
// not an error, and its digest is still passed on.
func TestNoBase(t *testing.T) {
	const bs = 64 << 10
	old := mixed(1<<20 + 5)
	cur := bytes.Clone(old)
	cur[3*bs] ^= 1
	changed := func(off int64, block []byte) bool { return !bytes.Equal(block, old[off:off+int64(len(block))]) }
	delta := encode(t, cur, WithBlockSize(bs), WithFilter(changed), WithSourceSize(int64(len(cur))))
	end, r := readEnd(t, delta, WithBase(noBase{}), WithLeaves())
	if end.Verified || end.Digest != digest.Sum256(cur) || r.Leaves() != nil {
		t.Fatalf("END verified %v, digest %x, %d leaves: want unverified, the source's digest, no leaves", end.Verified, end.Digest, len(r.Leaves()))
	}
}
