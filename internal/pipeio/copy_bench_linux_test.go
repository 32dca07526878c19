package pipeio

import (
	"io"
	"os"
	"testing"
)

// BenchmarkCopy moves b.N chunks of 1 MiB from one pipe to another,
// through 1 MiB pipes, with splice and with read/write.
func BenchmarkCopy(b *testing.B) {
	for _, noSplice := range []bool{false, true} {
		name := "splice"
		if noSplice {
			name = "readwrite"
		}
		b.Run(name, func(b *testing.B) {
			const chunk = 1 << 20
			inR, inW, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			outR, outW, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range []*os.File{inW, outW} {
				if _, err := Grow(f, DefaultPipeSize); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(chunk)
			b.ResetTimer()
			go func() {
				buf := make([]byte, chunk)
				for i := 0; i < b.N; i++ {
					inW.Write(buf)
				}
				inW.Close()
			}()
			drained := make(chan int64)
			go func() {
				// A 1 MiB reader; io.Discard's own ReadFrom reads 8 KiB.
				buf := make([]byte, chunk)
				n, _ := io.CopyBuffer(struct{ io.Writer }{io.Discard}, outR, buf)
				drained <- n
			}()
			c := &Copier{NoSplice: noSplice}
			n, err := c.Copy(outW, inR)
			outW.Close()
			if got := <-drained; err != nil || n != int64(b.N)*chunk || got != n {
				b.Fatalf("Copy = %d, %v; drained %d; want %d", n, err, got, int64(b.N)*chunk)
			}
			inR.Close()
			outR.Close()
		})
	}
}
