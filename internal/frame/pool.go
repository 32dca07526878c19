package frame

// pool is a bounded free list of buffers. Unlike sync.Pool it is not
// emptied by the garbage collector, so a steady stream reuses the same
// few buffers and makes no garbage, which keeps the heap (and RSS) at the
// in-flight working set rather than twice it.
type pool struct {
	free chan *[]byte
	size int // capacity of new buffers
}

func newPool(n, size int) *pool {
	return &pool{free: make(chan *[]byte, n), size: size}
}

// get returns a buffer of length 0 and capacity at least n (n ≤ the pool's
// size, or 0 for the pool's size).
func (p *pool) get(n int) *[]byte {
	select {
	case b := <-p.free:
		if cap(*b) >= n {
			*b = (*b)[:0]
			return b
		}
	default:
	}
	b := make([]byte, 0, max(n, p.size))
	return &b
}

// put returns b to the pool, or drops it if the pool is full.
func (p *pool) put(b *[]byte) {
	select {
	case p.free <- b:
	default:
	}
}
