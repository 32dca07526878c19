package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzDecode seed corpus")

// fuzzSeeds are valid streams of every codec and a few damaged ones.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	data := append(mixed(20000), make([]byte, 5000)...)
	seeds := map[string][]byte{"crafted-valid": validStream()}
	for _, c := range codecs[:3] {
		s := encode(tb, data, WithCodec(c.codec, c.level), WithBlockSize(4096), WithSourceSize(int64(len(data))))
		seeds["valid-"+c.name] = s
		cut := bytes.Clone(s[:len(s)/2])
		seeds["truncated-"+c.name] = cut
		flip := bytes.Clone(s)
		flip[len(flip)/3] ^= 0x10
		seeds["flipped-"+c.name] = flip
	}
	// The crafted streams carry SHA-256; the encoded ones above the
	// default, BLAKE3 (committed seeds made before it carry SHA-256).
	seeds["valid-blake3"] = encode(tb, data, WithBlockSize(4096), WithSourceSize(int64(len(data))), WithDigest(DigestBLAKE3))
	delta := testHeader()
	delta.Flags |= FlagDelta
	seeds["delta"] = join(delta.marshal(), dataRec(0, blockA), lz4Rec(2*tbs, blockC, tbs), endRec(3*tbs, 2, 2*tbs, srcDigest))
	seeds["delta-marks"] = join(delta.marshal(), markRec(0), dataRec(0, blockA), markRec(2*tbs), lz4Rec(2*tbs, blockC, tbs), markRec(3*tbs), endRec(3*tbs, 2, 2*tbs, srcDigest))
	seeds["huge-stored"] = join(testHeader().marshal(), rec(recHeader{typ: typeData, flags: rflagCompressed, storedLen: 0xffffffff, length: tbs}, nil))
	seeds["trailing"] = join(validStream(), []byte{0})
	return seeds
}

// TestFuzzCorpus checks that the committed seed corpus holds fuzzSeeds
// (go test -run FuzzCorpus -update rewrites it) and that each committed
// seed decodes as its name says: a valid stream to its source, verified by
// its digest; a truncated, bit-flipped, oversized or overlong one with the
// error for that; and each crasher the fuzzer found (found-*) is rejected
// with one of the package's errors, within fuzzOne's bounds.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	data := append(mixed(20000), make([]byte, 5000)...) // fuzzSeeds' source
	for name, b := range fuzzSeeds(t) {
		p := filepath.Join(dir, name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// The committed bytes, not fuzzSeeds', are decoded: a codec
		// upgrade may change the compressed bytes, and the old seeds
		// remain good seeds, so they must still decode as named.
		if _, err := os.Stat(p); err != nil {
			t.Errorf("seed missing (run go test -run FuzzCorpus -update): %v", err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds in %s: %v", dir, err)
	}
	for _, p := range files {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			seed := readSeed(t, p)
			d, err := decode(seed)
			switch kind, _, _ := strings.Cut(name, "-"); {
			case name == "crafted-valid" || kind == "valid":
				if err != nil {
					t.Fatalf("a valid stream is rejected: %v", err)
				}
				src := data
				if name == "crafted-valid" {
					src = source
				}
				if !bytes.Equal(d.data, src) || !d.end.Verified || d.end.Digest != sourceDigest(d.hdr.DigestAlg, src) {
					t.Fatalf("decodes to %d bytes (first difference at %d), END verified %v", len(d.data), testutil.FirstDiff(d.data, src), d.end.Verified)
				}
			case name == "delta" || name == "delta-marks":
				// A delta without its base cannot be verified, but its
				// records and END must be accepted.
				if err != nil {
					t.Fatalf("a valid delta stream is rejected: %v", err)
				}
				if d.end.Verified || d.end.Digest != srcDigest || d.hdr.Flags&FlagDelta == 0 {
					t.Fatalf("END verified %v digest %x, DELTA %v", d.end.Verified, d.end.Digest, d.hdr.Flags&FlagDelta != 0)
				}
			case kind == "truncated":
				wantErr(t, err, ErrTruncated)
			case kind == "flipped":
				// One flipped bit: a CRC catches it (or, in a compressed
				// payload, the decoder may fail first).
				wantErr(t, err, ErrHeaderChecksum, ErrChecksum, ErrCorrupt)
			case name == "huge-stored":
				wantErr(t, err, ErrTooLarge)
			case name == "trailing":
				wantErr(t, err, ErrTrailingData)
			case kind == "found":
				wantErr(t, err, ErrBadMagic, ErrVersion, ErrHeaderChecksum, ErrHeader, ErrTruncated,
					ErrChecksum, ErrCorrupt, ErrTooLarge, ErrRange, ErrOrder, ErrDigest, ErrTrailingData)
				fuzzOne(t, seed)
			default:
				t.Fatalf("seed %s: no expected outcome for this name; add one here", name)
			}
		})
	}
}

// readSeed reads a file of Go's fuzz corpus format holding one []byte.
func readSeed(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	q, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
	q, ok2 := strings.CutSuffix(q, ")\n")
	s, err := strconv.Unquote(q)
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: not a one-[]byte fuzz corpus file: %v", p, err)
	}
	return []byte(s)
}

// wantErr fails t unless err is one of the wanted errors.
func wantErr(t *testing.T, err error, want ...error) {
	t.Helper()
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	t.Fatalf("error %v, want one of %v", err, want)
}

// FuzzDecode: the Reader never panics, returns only records within its
// caps, and allocates no more than about a block per record however the
// lengths in the input lie.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzOne(t, b)
		// Mutations rarely keep a CRC right, so also decode the input
		// with its checksums repaired, to reach the checks behind them.
		fuzzOne(t, repairCRCs(bytes.Clone(b)))
	})
}

// repairCRCs recomputes the header CRC and, walking the records, each
// record's CRC and the payload CRC of raw DATA and END records.
func repairCRCs(b []byte) []byte {
	le := binary.LittleEndian
	if len(b) < HeaderLen {
		return b
	}
	hlen := int(le.Uint16(b[10:]))
	if hlen < HeaderLen || hlen > len(b) {
		return b
	}
	le.PutUint32(b[hlen-4:], crc(b[:hlen-4]))
	var id [16]byte
	copy(id[:], b[40:56])
	for off := hlen; off+RecordHeaderLen <= len(b); {
		r := b[off:]
		stored := int(le.Uint32(r[4:]))
		if off+RecordHeaderLen+stored <= len(b) {
			payload := r[RecordHeaderLen : RecordHeaderLen+stored]
			if (r[0] == typeData && r[1] == 0) || r[0] == typeEnd {
				le.PutUint32(r[24:], crc(payload))
			}
		}
		le.PutUint32(r[28:], recordCRC(r[:28], &id))
		if stored > len(b) {
			break
		}
		off += RecordHeaderLen + stored
	}
	return b
}

func fuzzOne(t *testing.T, b []byte) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// Verify the digest only of small declared sources: a ZERO run
	// of an exabyte in a stream of unknown size is legal, and
	// hashing it would take years.
	verify := len(b) >= 32 && int64(binary.LittleEndian.Uint64(b[24:])) >= 0 &&
		int64(binary.LittleEndian.Uint64(b[24:])) <= 1<<20
	r, err := NewReader(bytes.NewReader(b), WithDecoders(1), WithVerify(verify))
	if err != nil {
		return
	}
	h := r.Header()
	records := int64(0)
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		records++
		switch rec.Type {
		case Data:
			if int64(len(rec.Data)) != rec.Length || rec.Length > int64(h.BlockSize) {
				t.Fatalf("DATA of %d bytes, length %d, block size %d", len(rec.Data), rec.Length, h.BlockSize)
			}
		case Zero, End:
			if rec.Data != nil {
				t.Fatalf("%v with data", rec.Type)
			}
		}
	}
	r.Close()
	runtime.ReadMemStats(&after)
	limit := uint64(records+8)*uint64(h.BlockSize) + 16<<20
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Fatalf("allocated %d bytes for %d records of block size %d (limit %d)", got, records, h.BlockSize, limit)
	}
}
