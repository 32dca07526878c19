package digest_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/blkpipe/blkpipe/internal/digest"
)

// A sender hashes a 1 MiB source with its leaf map; the receiver keeps the
// map, rewrites one leaf of its copy, and recomputes the root from that
// leaf and its parents only.
func Example() {
	src := bytes.Repeat([]byte("blkpipe"), 1<<20/7+1)[:1<<20]
	h := digest.New(digest.WithLeaves())
	h.Write(src)
	m := &digest.Map{Size: int64(len(src)), Root: h.Sum(), Leaves: h.Leaves()}
	b, err := m.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d leaves, map of %d bytes\n", len(m.Leaves), len(b))

	got, err := digest.Unmarshal(b)
	if err != nil {
		log.Fatal(err)
	}
	t, err := got.Tree()
	if err != nil {
		log.Fatal(err)
	}
	copy(src[5*digest.LeafSize:], "changed")
	if _, err := t.SetLeaf(5, src[5*digest.LeafSize:6*digest.LeafSize]); err != nil {
		log.Fatal(err)
	}
	root, err := t.Root()
	fmt.Println(root == digest.Sum256(src), root != m.Root, err)
	// Output:
	// 16 leaves, map of 600 bytes
	// true true <nil>
}
