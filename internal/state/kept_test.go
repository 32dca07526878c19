package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/digest"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// keptFile writes data to a file and keeps a record, map and sums for it
// as blkwrite does after a verified copy.
func keptFile(t *testing.T, d Dir, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dst")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	root, leaves := digest.Leaves(data)
	m := digest.Map{Size: int64(len(data)), Root: root, Leaves: leaves}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveMap(path, b); err != nil {
		t.Fatal(err)
	}
	var sb bytes.Buffer
	sw, _ := sums.NewWriter(&sb, KeptBlockSize, int64(len(data)))
	sw.Write(data)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	c := Copy{Target: path, Size: int64(len(data)), Alg: "blake3", Digest: hex.EncodeToString(root[:]),
		StreamID: "00112233445566778899aabbccddeeff", Time: time.Now()}
	if c.Sums, err = d.SaveSums(path, sb.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetID(identifyPath(t, path))
	if err := d.SaveCopy(c); err != nil {
		t.Fatal(err)
	}
	return path
}

func kept(t *testing.T, d Dir, path string) (*Kept, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return d.Kept(f, path)
}

// TestKept: a valid kept state is trusted, with its sums; each way it can
// go stale or be damaged is refused with its reason.
func TestKept(t *testing.T) {
	d := Dir(t.TempDir())
	data := make([]byte, 1<<20+300)
	rand.NewChaCha8([32]byte{1}).Read(data)
	otherPath := keptFile(t, d, data[:1<<20])
	for _, tc := range []struct {
		name, reason string
		damage       func(t *testing.T, path string)
	}{
		{"valid", "", func(*testing.T, string) {}},
		{"no-record", "no copy record", func(t *testing.T, path string) { os.Remove(d.CopyPath(path)) }},
		{"record-flipped", "the copy record is damaged", func(t *testing.T, path string) { flip(t, d.CopyPath(path), 30) }},
		{"map-flipped", "the map is damaged", func(t *testing.T, path string) { flip(t, d.MapPath(path), 100) }},
		{"map-truncated", "the map is damaged", func(t *testing.T, path string) { os.Truncate(d.MapPath(path), 90) }},
		{"map-missing", "no digest map", func(t *testing.T, path string) { os.Remove(d.MapPath(path)) }},
		{"map-of-another", "the map is of another copy", func(t *testing.T, path string) {
			b, _ := os.ReadFile(d.MapPath(otherPath))
			os.WriteFile(d.MapPath(path), b, 0o600)
		}},
		{"written-since", "the target was changed since", func(t *testing.T, path string) {
			os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour))
		}},
		{"mtime-set-back", "the target was changed since", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			flip(t, path, len(data)-1)
			os.Chtimes(path, time.Time{}, fi.ModTime())
		}},
		{"written-past-the-stamp", "is not what the map says", func(t *testing.T, path string) {
			// A write the stamp cannot see (to a device under the
			// target, say): the sampled leaves, the last always among
			// them, catch it.
			flip(t, path, len(data)-1)
			c, err := d.LoadCopy(path)
			if err != nil {
				t.Fatal(err)
			}
			c.Stamp = identifyPath(t, path).Stamp
			if err := d.SaveCopy(c); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := keptFile(t, d, data)
			tc.damage(t, path)
			k, err := kept(t, d, path)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, err := d.KeptSums(k)
				if err != nil {
					t.Fatal(err)
				}
				if _, ds, err := sums.Decode(b); err != nil || len(ds) != int(sums.Blocks(int64(len(data)), KeptBlockSize)) {
					t.Fatalf("kept sums: %d, %v", len(ds), err)
				}
				flip(t, d.SumsPath(path), 50)
				if _, err := d.KeptSums(k); err == nil || !strings.Contains(err.Error(), "damaged") {
					t.Fatalf("flipped kept sums: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want %q", err, tc.reason)
			}
			if tc.name == "no-record" && !errors.Is(err, ErrNoCopy) {
				t.Fatalf("got %v, want ErrNoCopy", err)
			}
		})
	}
}

func flip(t *testing.T, path string, i int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCopySums: the record's optional sums field round-trips, and
// RemoveCopy removes the kept sums too.
func TestCopySums(t *testing.T) {
	d := Dir(t.TempDir())
	c := Copy{Target: "/dev/x", Dev: 1, Size: 5, Alg: "blake3", Digest: "ab", StreamID: "cd", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Sums: "0badf00d"}
	if err := d.SaveCopy(c); err != nil {
		t.Fatal(err)
	}
	if got, err := d.LoadCopy("/dev/x"); err != nil || got != c {
		t.Fatalf("LoadCopy = %+v, %v", got, err)
	}
	if _, err := d.SaveSums("/dev/x", []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveCopy("/dev/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.SumsPath("/dev/x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kept sums after RemoveCopy: %v", err)
	}
}

// TestKeptRecheck: kept state checked on one descriptor holds for another
// of the same file until the file is written (its stamp moves) or grows.
func TestKeptRecheck(t *testing.T) {
	d := Dir(t.TempDir())
	data := make([]byte, 1<<20+300)
	rand.NewChaCha8([32]byte{9}).Read(data)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
		want   string // "" for valid
	}{
		{"unchanged", func(*testing.T, string) {}, ""},
		{"written", func(t *testing.T, path string) { flip(t, path, 5) }, "the target was changed since"},
		{"grown", func(t *testing.T, path string) {
			if err := os.Truncate(path, int64(len(data))+1); err != nil {
				t.Fatal(err)
			}
		}, "the target was changed since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := keptFile(t, d, data)
			k, err := kept(t, d, path)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, path)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = k.Recheck(f)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("Recheck: %v, want %q", err, tc.want)
			}
		})
	}
}
