package blockdev_test

import (
	"fmt"

	"github.com/blkpipe/blkpipe/internal/blockdev"
)

func ExampleAlignedBuffer() {
	buf := blockdev.AlignedBuffer(1<<20+100, 4096)
	fmt.Println(len(buf), blockdev.IsAligned(buf, 4096), blockdev.IsZero(buf))
	// Output: 1048676 true true
}

func ExampleZeroPrefixLen() {
	block := make([]byte, 8192)
	block[5000] = 'x'
	// blkwrite seeks over the zero prefix instead of writing it.
	fmt.Println(blockdev.ZeroPrefixLen(block), blockdev.IsZero(block[:5000]))
	// Output: 5000 true
}
