package testutil

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that one writer (a process's output, a
// display goroutine) and concurrent readers may use at once. The zero value
// is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p. This method is concurrency-safe.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far. This method is concurrency-safe.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
