package progress

import (
	"io"
	"sync/atomic"
)

// CountReader passes reads through to R and adds the bytes read to N,
// which another goroutine may read at any time.
type CountReader struct {
	R io.Reader
	N *atomic.Int64
}

func (c *CountReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N.Add(int64(n))
	return n, err
}

// CountWriter passes writes through to W and adds the bytes written to
// N, which another goroutine may read at any time.
type CountWriter struct {
	W io.Writer
	N *atomic.Int64
}

func (c *CountWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N.Add(int64(n))
	return n, err
}
