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
// reader that stopped, up to aheadMax bytes in a buffer that grows no
// further than that and one read.
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
		a := newAheadReader(bytes.NewReader(data))
		defer a.close()
		a.start()
		a.mu.Lock()
		for a.err == nil {
			a.cond.Wait()
		}
		held := len(a.buf) - a.head
		a.mu.Unlock()
		if held != len(data) {
			t.Fatalf("holds %d bytes before any read, want all %d", held, len(data))
		}
		got, err := io.ReadAll(a)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
	})
	t.Run("at most aheadMax", func(t *testing.T) {
		big := bytes.Repeat(data, aheadMax/len(data)+2)
		a := newAheadReader(bytes.NewReader(big))
		defer a.close()
		a.start()
		a.mu.Lock()
		for len(a.buf)-a.head < aheadMax {
			a.cond.Wait() // the filler then waits for room
		}
		held, c := len(a.buf)-a.head, cap(a.buf)
		a.mu.Unlock()
		if held >= len(big) || c > aheadMax+aheadRead {
			t.Fatalf("holds %d of %d bytes in a buffer of %d, want at most %d in %d", held, len(big), c, aheadMax, aheadMax+aheadRead)
		}
		got, err := io.ReadAll(a)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
	})
}
