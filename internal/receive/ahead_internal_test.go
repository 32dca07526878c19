package receive

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestAheadReader: the stream comes out whole and in order, whether
// reading ahead starts before the first read, after some reads, or never;
// the writer's error follows the last byte; the filler reads ahead of a
// reader that stopped, up to aheadChunks full chunks.
func TestAheadReader(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		startAt int // start after this many reads; -1: never
		end     error
	}{
		{"never", -1, nil},
		{"at once", 0, nil},
		{"after three reads", 3, nil},
		{"error", 2, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				rng := rand.New(rand.NewPCG(1, 2))
				for p := data; len(p) > 0; {
					n := min(len(p), 1+rng.IntN(100<<10))
					pw.Write(p[:n])
					p = p[n:]
				}
				pw.CloseWithError(tc.end)
			}()
			a := newAheadReader(pr)
			defer a.close()
			var got bytes.Buffer
			buf := make([]byte, 7000)
			var err error
			for reads := 0; ; reads++ {
				if reads == tc.startAt {
					a.start()
				}
				var n int
				n, err = a.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
				if n == 0 {
					t.Fatal("Read returned 0 bytes and no error")
				}
			}
			want := tc.end
			if want == nil {
				want = io.EOF
			}
			if err != want {
				t.Errorf("last Read: %v, want %v", err, want)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Errorf("read %d bytes, not the %d written", got.Len(), len(data))
			}
		})
	}
	t.Run("ahead of a stopped reader", func(t *testing.T) {
		big := bytes.Repeat(data, aheadChunks*aheadRead/len(data)+2)
		a := newAheadReader(bytes.NewReader(big))
		defer a.close()
		a.start()
		a.mu.Lock()
		for len(a.chunks) < aheadChunks {
			a.cond.Wait() // the filler then waits for room
		}
		held := 0
		for _, c := range a.chunks {
			held += len(c)
		}
		a.mu.Unlock()
		if held != aheadChunks*aheadRead {
			t.Fatalf("holds %d bytes before any read, want %d", held, aheadChunks*aheadRead)
		}
		got, err := io.ReadAll(a)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
	})
}
