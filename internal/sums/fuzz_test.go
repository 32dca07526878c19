package sums_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/blkpipe/blkpipe/internal/sums"
)

// FuzzReader: any input is either read to a checked trailer or rejected
// with one of the package's errors; never a panic, never more digests than
// the header's size allows, and an accepted stream has exactly the length
// its header implies.
func FuzzReader(f *testing.F) {
	f.Add(stream(f, []byte("blkpipe sums fuzz seed"), 512, 7))
	f.Add(stream(f, make([]byte, 5000), 4096, 4096))
	f.Add([]byte(sums.Magic))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := sums.NewReader(bytes.NewReader(in))
		if err != nil {
			if !isOurs(err) {
				t.Fatalf("header: unexpected error %v", err)
			}
			return
		}
		h := r.Header()
		n := sums.Blocks(h.Size, h.BlockSize)
		var got int64
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !isOurs(err) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			got++
			if got > n {
				t.Fatalf("more than %d digests", n)
			}
		}
		if got != n || int64(len(in)) != sums.HeaderLen+8*n+sums.TrailerLen {
			t.Fatalf("accepted %d digests of %d in %d bytes", got, n, len(in))
		}
	})
}

func isOurs(err error) bool {
	for _, e := range []error{sums.ErrBadMagic, sums.ErrVersion, sums.ErrHeader, sums.ErrTruncated, sums.ErrChecksum, sums.ErrTrailingData} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
