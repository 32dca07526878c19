package changes

import (
	"bytes"
	"encoding/binary"
	"errors"

	"slices"
	"strings"
	"testing"
)

// cowStore builds an exception store as dm-snap-persistent writes it:
// header, then each area's metadata chunk followed by its data chunks
// (zero-filled here), the area after a full one zeroed too.
type cowStore struct {
	magic, valid, version, sectors uint32
	exceptions                     [][2]uint64 // origin chunk, COW chunk; COW 0 means "allocate"
}

func (s cowStore) bytes() []byte {
	cs := int(s.sectors) * 512
	per := cs / 16
	areas := len(s.exceptions)/per + 1
	b := make([]byte, cs*(1+areas*(per+1)))
	binary.LittleEndian.PutUint32(b, s.magic)
	binary.LittleEndian.PutUint32(b[4:], s.valid)
	binary.LittleEndian.PutUint32(b[8:], s.version)
	binary.LittleEndian.PutUint32(b[12:], s.sectors)
	for i, e := range s.exceptions {
		k, j := i/per, i%per
		meta := 1 + k*(per+1)
		cow := e[1]
		if cow == 0 {
			cow = uint64(meta + 1 + j) // the kernel's next free data chunk
		}
		at := meta*cs + j*16
		binary.LittleEndian.PutUint64(b[at:], e[0])
		binary.LittleEndian.PutUint64(b[at+8:], cow)
	}
	return b
}

// sectors overwrites the chunk size in the header of store b.
func sectors(b []byte, n uint32) []byte {
	binary.LittleEndian.PutUint32(b[12:], n)
	return b
}

func goodStore(sectors uint32, origins ...uint64) cowStore {
	s := cowStore{magic: cowMagic, valid: 1, version: 1, sectors: sectors}
	for _, o := range origins {
		s.exceptions = append(s.exceptions, [2]uint64{o, 0})
	}
	return s
}

func seq(from, n uint64) []uint64 {
	var s []uint64
	for i := range n {
		s = append(s, from+i)
	}
	return s
}

func TestCowParse(t *testing.T) {
	const C = 4096 // 8 sectors: 256 exceptions per area
	for _, tc := range []struct {
		name  string
		store []byte
		want  List
		chunk int64
	}{
		{"empty", goodStore(8).bytes(), List{}, C},
		{"one area", goodStore(8, 7, 3, 4, 100).bytes(), List{{3 * C, 2 * C}, {7 * C, C}, {100 * C, C}}, C},
		{"full area", goodStore(8, seq(1000, 256)...).bytes(), List{{1000 * C, 256 * C}}, C},
		{"area boundary", goodStore(8, append(seq(0, 256), 5000, 10)...).bytes(),
			List{{0, 256 * C}, {5000 * C, C}}, C},
		{"two full areas", goodStore(8, seq(0, 512)...).bytes(), List{{0, 512 * C}}, C},
		{"64 KiB chunks", goodStore(128, 2, 1).bytes(), List{{64 << 10, 128 << 10}}, 64 << 10},
		{"512-byte chunks", goodStore(1, append(seq(0, 32), 40)...).bytes(), List{{0, 32 * 512}, {40 * 512, 512}}, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCOW(bytes.NewReader(tc.store))
			if err != nil {
				t.Fatalf("ParseCOW: %v", err)
			}
			if c.ChunkSize != tc.chunk {
				t.Errorf("chunk size %d, want %d", c.ChunkSize, tc.chunk)
			}
			if !slices.Equal(c.Changed, tc.want) {
				t.Errorf("Changed = %v, want %v", c.Changed, tc.want)
			}
		})
	}
}

func TestCowParseRejects(t *testing.T) {
	good := goodStore(8, 1, 2, 3)
	with := func(f func(*cowStore)) []byte {
		s := good
		s.exceptions = slices.Clone(good.exceptions)
		f(&s)
		return s.bytes()
	}
	full := goodStore(8, seq(0, 256)...).bytes()
	for _, tc := range []struct {
		name     string
		store    []byte
		want     string
		noChange bool
	}{
		{"invalid", with(func(s *cowStore) { s.valid = 0 }), "snapshot overflowed: its change list is lost", true},
		{"bad magic", with(func(s *cowStore) { s.magic = 0x12345678 }), "magic 0x12345678", false},
		{"never initialised", make([]byte, 8192), "magic 0x0", false},
		{"version 2", with(func(s *cowStore) { s.version = 2 }), "version 2", false},
		{"chunk size 0", sectors(good.bytes(), 0), "not a power of two", false},
		{"chunk size 24", sectors(good.bytes(), 24), "not a power of two", false},
		{"chunk size 2 MiB", sectors(good.bytes(), 4096), "over 1024 KiB", true},
		{"empty input", nil, "read snapshot header: unexpected EOF", false},
		{"short header", good.bytes()[:12], "unexpected EOF", false},
		{"no metadata area", good.bytes()[:4096], "area 0 at offset 4096: unexpected EOF", false},
		{"partial area", good.bytes()[:6000], "area 0 at offset 4096: unexpected EOF", false},
		{"missing area after a full one", full[:(1+257)*4096], "area 1 at offset 1056768: unexpected EOF", false},
		{"cow chunk on metadata", with(func(s *cowStore) { s.exceptions[1][1] = 258 }), "points at metadata chunk 258", false},
		{"cow chunk on the first area", with(func(s *cowStore) { s.exceptions[0][1] = 1 }), "points at metadata chunk 1", false},
		{"origin past 8 EiB", with(func(s *cowStore) { s.exceptions[2][0] = 1 << 51 }), "past 8 EiB", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCOW(bytes.NewReader(tc.store))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCOW = %+v, %v; want an error containing %q", c, err, tc.want)
			}
			if errors.Is(err, ErrNoChangeList) != tc.noChange {
				t.Errorf("errors.Is(%v, ErrNoChangeList) = %v, want %v", err, !tc.noChange, tc.noChange)
			}
		})
	}
}

// failingReader fails every read past its first n bytes with err.
type failingReader struct {
	b   []byte
	n   int64
	err error
}

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.n {
		return 0, r.err
	}
	return copy(p, r.b[off:]), nil
}

func TestCowParseReadError(t *testing.T) {
	eio := errors.New("input/output error")
	b := goodStore(8, 1).bytes()
	_, err := ParseCOW(failingReader{b, 4096, eio})
	if !errors.Is(err, eio) || !strings.Contains(err.Error(), "read snapshot metadata area 0") {
		t.Fatalf("ParseCOW with a failing area read: %v", err)
	}
}

// FuzzCowParse feeds arbitrary stores to the parser: it must not panic,
// and what it accepts must be whole, normalised chunks. The seeds are
// stores built to the kernel's layout.
func FuzzCowParse(f *testing.F) {
	f.Add(goodStore(1, 3, 1, 2).bytes())
	f.Add(goodStore(1, seq(0, 33)...).bytes())
	f.Add(goodStore(2, 9, 0).bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCOW(bytes.NewReader(in))
		if err != nil {
			if c != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		checkNormal(t, c.Changed)
		for _, r := range c.Changed {
			if r.Off%c.ChunkSize != 0 || r.Len%c.ChunkSize != 0 {
				t.Fatalf("range %v is not whole chunks of %d", r, c.ChunkSize)
			}
		}
		// Every exception read lies in a metadata area inside the input.
		if int64(len(in)) < 2*c.ChunkSize {
			t.Fatalf("accepted a %d-byte store with %d-byte chunks", len(in), c.ChunkSize)
		}
	})
}
