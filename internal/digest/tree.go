package digest

import (
	"fmt"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// Tree holds a source's leaf chaining values and the parents above them,
// so that after some leaves change the root costs only their paths:
// O(changed · log n) compressions. Memory: about 64 bytes per leaf (the
// leaves, then half as many parents per level). A Tree is not safe for
// concurrent use.
type Tree struct {
	size int64
	// levels[h][j] is the chaining value of the perfect subtree of
	// leaves [j<<h, (j+1)<<h); levels[0] are the leaves.
	levels [][][8]uint32
	// one is the root of a one-leaf source, known only from its bytes
	// (SetLeaf) or from a map.
	one *[Size]byte
}

// NewTree returns the Tree of a source of size bytes with the given leaf
// chaining values, NumLeaves(size) of them (copied).
func NewTree(size int64, leaves []CV) (*Tree, error) {
	if size < 0 {
		return nil, fmt.Errorf("digest: tree of size %d", size)
	}
	if n := NumLeaves(size); int64(len(leaves)) != n {
		return nil, fmt.Errorf("digest: tree of %d bytes needs %d leaves, got %d", size, n, len(leaves))
	}
	l0 := make([][8]uint32, len(leaves))
	for i, c := range leaves {
		l0[i] = c.words()
	}
	t := &Tree{size: size, levels: [][][8]uint32{l0}}
	for prev := l0; len(prev) >= 2; {
		next := make([][8]uint32, len(prev)/2)
		for j := range next {
			next[j] = parentCV(prev[2*j], prev[2*j+1])
		}
		t.levels = append(t.levels, next)
		prev = next
	}
	return t, nil
}

// Size returns the source size the Tree was made for.
func (t *Tree) Size() int64 { return t.size }

// Len returns the number of leaves.
func (t *Tree) Len() int64 { return int64(len(t.levels[0])) }

// Leaf returns leaf i's chaining value.
func (t *Tree) Leaf(i int64) CV { return toCV(t.levels[0][i]) }

// Leaves returns a copy of the leaf chaining values.
func (t *Tree) Leaves() []CV {
	out := make([]CV, len(t.levels[0]))
	for i, w := range t.levels[0] {
		out[i] = toCV(w)
	}
	return out
}

// Set replaces leaf i's chaining value and updates its parents.
func (t *Tree) Set(i int64, cv CV) {
	t.levels[0][i] = cv.words()
	for h := 1; h < len(t.levels); h++ {
		j := i >> h
		if j >= int64(len(t.levels[h])) {
			break
		}
		below := t.levels[h-1]
		t.levels[h][j] = parentCV(below[2*j], below[2*j+1])
	}
	if t.Len() == 1 {
		t.one = nil // unknown until SetLeaf
	}
}

// SetLeaf rehashes leaf i from its bytes b (LeafSize bytes, fewer for the
// last leaf) and updates its parents, and returns the leaf's new chaining
// value.
func (t *Tree) SetLeaf(i int64, b []byte) (CV, error) {
	if i < 0 || i >= t.Len() {
		return CV{}, fmt.Errorf("digest: leaf %d of a %d-leaf tree", i, t.Len())
	}
	if want := min(LeafSize, t.size-i*LeafSize); int64(len(b)) != want {
		return CV{}, fmt.Errorf("digest: leaf %d of a %d-byte source is %d bytes, got %d", i, t.size, want, len(b))
	}
	n := leafNode(b, i)
	cv := toCV(guts.ChainingValue(n))
	t.Set(i, cv)
	if t.Len() == 1 {
		r := rootOf(n)
		t.one = &r
	}
	return cv, nil
}

// Root returns the BLAKE3-256 digest of the source. For a one-leaf source
// it needs the leaf's bytes (SetLeaf) or a map's root, else ErrOneLeaf.
func (t *Tree) Root() ([Size]byte, error) {
	n := t.Len()
	if n == 1 {
		if t.one == nil {
			return [Size]byte{}, ErrOneLeaf
		}
		return *t.one, nil
	}
	// The root's children: the perfect subtrees of n's binary
	// expansion, largest first, folded from the right; a power of two
	// is one subtree whose two halves are the children.
	var spine [][8]uint32
	start := int64(0)
	for h := bits.Len64(uint64(n)) - 1; h >= 0; h-- {
		if n&(1<<h) != 0 {
			spine = append(spine, t.levels[h][start>>h])
			start += 1 << h
		}
	}
	if len(spine) == 1 {
		h := bits.Len64(uint64(n)) - 2
		return rootOf(parent(t.levels[h][0], t.levels[h][1])), nil
	}
	last := parent(spine[len(spine)-2], spine[len(spine)-1])
	for k := len(spine) - 3; k >= 0; k-- {
		last = parent(spine[k], guts.ChainingValue(last))
	}
	return rootOf(last), nil
}

// Root returns the BLAKE3-256 digest of a source of size bytes from its
// leaf chaining values, NumLeaves(size) of them: ErrOneLeaf if that is one.
func Root(size int64, leaves []CV) ([Size]byte, error) {
	t, err := NewTree(size, leaves)
	if err != nil {
		return [Size]byte{}, err
	}
	return t.Root()
}
