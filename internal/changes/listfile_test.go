package changes

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestListFile(t *testing.T) {
	l := List{{0, 4096}, {65536, 1 << 20}, {1 << 30, 512}}
	var b bytes.Buffer
	if err := WriteList(&b, l); err != nil {
		t.Fatal(err)
	}
	got, err := ReadList(bytes.NewReader(b.Bytes()))
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := ReadList(strings.NewReader("blkpipe-changes 1\nend 0 0\n")); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v %v", got, err)
	}
	text := b.String()
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"magic", "blkpipe-changes 2\nend 0 0\n"},
		{"truncated", text[:strings.Index(text, "end")]},
		{"truncated in a line", text[:len(text)-20]},
		{"count", strings.Replace(text, "end 3", "end 2", 1)},
		{"bytes", strings.Replace(text, "end 3 1053184", "end 3 1", 1)},
		{"unsorted", "blkpipe-changes 1\n8192 10\n0 10\nend 2 20\n"},
		{"touching", "blkpipe-changes 1\n0 10\n10 10\nend 2 20\n"},
		{"negative", "blkpipe-changes 1\n-1 10\nend 1 10\n"},
		{"empty range", "blkpipe-changes 1\n0 0\nend 1 0\n"},
		{"overflow", "blkpipe-changes 1\n9223372036854775000 10000\nend 1 10000\n"},
		{"garbage", "blkpipe-changes 1\nx y\nend 1 0\n"},
		{"after end", text + "0 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadList(strings.NewReader(tc.in)); !errors.Is(err, ErrListFile) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}
