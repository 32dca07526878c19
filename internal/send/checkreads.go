package send

import "sync"

// inFlight calls read(k) for k in [0, n), up to readers at once, and
// returns when all have returned. The checks before a changed-block
// stream (sample, spotCheck) read a few dozen blocks at random: one at a
// time, each waits a whole seek, and on a busy disk that was most of a
// small night's wall time.
func inFlight(n int, read func(k int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, readers)
	for k := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			read(k)
		}()
	}
	wg.Wait()
}
