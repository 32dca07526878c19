package ddargs

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// operandPool holds operands, good and bad, for random command lines.
var operandPool = []string{
	"count=1", "count=0", "count=x", "count=1B", "skip=1", "skip=2B", "iseek=1", "seek=2", "oseek=3B",
	"bs=1k", "bs=0", "ibs=3", "obs=0x1", "obs=2", "count=0x3", "cbs=4", "cbs=0",
	"conv=notrunc", "conv=excl", "conv=nocreat", "conv=sync,noerror", "conv=sparse", "conv=fsync", "conv=fdatasync",
	"conv=lcase", "conv=ucase", "conv=ascii", "conv=ebcdic", "conv=ibm", "conv=block", "conv=unblock", "conv=swab",
	"conv=foo", "conv=", "iflag=direct", "iflag=nocache", "oflag=direct", "oflag=nocache", "oflag=fullblock",
	"iflag=fullblock", "iflag=binary", "iflag=count_bytes", "oflag=seek_bytes", "iflag=noatime,nonblock",
	"oflag=append", "iflag=directory", "oflag=directory",
	"status=none", "status=progress", "status=noxfer", "status=bad",
	"foo", "foo=1", "-x", "--", "--foo", "--help", "--he", "--v", "--=", "--version=1", "-", "if=", "of=",
	"seek=513B", "count=9223372036854775807", "bs=9223372036854775807",
}

// symbolNames are the words random conv=, iflag=, oflag= and status= lists
// are made of, valid or not for each.
var symbolNames = []string{
	"", "foo", "notrunc", "sync", "noerror", "excl", "nocreat", "sparse", "fsync", "fdatasync",
	"ascii", "ebcdic", "ibm", "block", "unblock", "lcase", "ucase", "swab",
	"append", "binary", "cio", "direct", "directory", "dsync", "noatime", "nocache", "noctty",
	"nofollow", "nolinks", "nonblock", "text", "fullblock", "count_bytes", "skip_bytes", "seek_bytes",
	"none", "noxfer", "progress",
}

// randomOperand returns an operand from operandPool or a random list of
// symbols for conv=, iflag=, oflag= or status=.
func randomOperand(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return operandPool[r.IntN(len(operandPool))]
	}
	keys := []string{"conv", "iflag", "oflag", "status"}
	names := make([]string, 1+r.IntN(3))
	for i := range names {
		names[i] = symbolNames[r.IntN(len(symbolNames))]
	}
	return keys[r.IntN(len(keys))] + "=" + strings.Join(names, ",")
}

// TestParseRandomAgainstDD compares Parse with dd on random command lines:
// when Parse fails with one of dd's errors, dd prints the same; when Parse
// succeeds, so does dd. (stdin and stdout are regular files, so every flag
// can be set on them.)
func TestParseRandomAgainstDD(t *testing.T) {
	needDD(t)
	runs := 400
	if testing.Short() {
		runs = 40
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(randomSeed(t, 3), 4))
	for i := 0; i < runs; i++ {
		args := make([]string, 1+r.IntN(4))
		for j := range args {
			args[j] = randomOperand(r)
		}
		o, err := Parse(args)
		res := runDD(t, dir, args...)
		switch {
		case errors.Is(err, ErrHelp) || errors.Is(err, ErrVersion):
			if res.code != 0 {
				t.Errorf("%q: %v, dd exit %d %q", args, err, res.code, res.first)
			}
		case err != nil && strings.HasSuffix(err.Error(), "is not supported by blkpipe"):
			// dd implements it, so it accepts or fails later.
		case err != nil:
			if res.code == 0 || res.first != err.Error() {
				t.Errorf("%q: Parse error %q, dd exit %d %q", args, err, res.code, res.first)
			}
		case res.code != 0:
			t.Errorf("%q: Parse ok, dd exit %d %q", args, res.code, res.first)
		case len(res.warnings) != len(o.Warnings):
			t.Errorf("%q: Parse warnings %q, dd %q", args, o.Warnings, res.warnings)
		}
	}
}

// FuzzParse checks that Parse never panics and that what it returns is
// consistent. The fuzz string holds the arguments separated by NUL bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"if=/dev/sda\x00bs=4M\x00iflag=direct\x00status=progress",
		"count=1MB\x00skip=3B\x00seek=1KiB\x00ibs=100\x00obs=7",
		"--\x00-x",
		"conv=excl,nocreat",
		"of=\x00seek=9223372036854775807",
		"bs=0x512",
		"--h=1",
	} {
		f.Add(s)
	}
	for _, s := range operandPool {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		o, err := Parse(args)
		if err != nil {
			if o != nil {
				t.Fatalf("Parse(%q) returned operands with error %v", args, err)
			}
			if !errors.Is(err, ErrUsage) && !errors.Is(err, ErrConflict) && err != ErrHelp && err != ErrVersion {
				t.Fatalf("Parse(%q): %v wraps neither ErrUsage, ErrConflict, ErrHelp nor ErrVersion", args, err)
			}
			return
		}
		if o.IBS < 1 || o.OBS < 1 || o.BS < 0 || o.Count < -1 || o.Skip < 0 || o.Seek < 0 {
			t.Fatalf("Parse(%q) = %+v", args, o)
		}
		if o.BS > 0 && (o.IBS != o.BS || o.OBS != o.BS) {
			t.Fatalf("Parse(%q): bs=%d but ibs=%d obs=%d", args, o.BS, o.IBS, o.OBS)
		}
		if o.IFlag.Direct && o.IFlag.Nocache || o.OFlag.Direct && o.OFlag.Nocache || o.Conv.Excl && o.Conv.Nocreat {
			t.Fatalf("Parse(%q) accepted conflicting flags: %+v", args, o)
		}
		if x := o.Text; x.Block && x.Unblock || x.Lcase && x.Ucase || (x.Block || x.Unblock) && x.CBS == 0 ||
			x.ASCII && x.EBCDIC || x.ASCII && x.IBM || x.EBCDIC && x.IBM {
			t.Fatalf("Parse(%q) accepted conflicting conversions: %+v", args, x)
		}
		if o.OFlag.Fullblock || o.OFlag.CountBytes || o.OFlag.SkipBytes || o.IFlag.SeekBytes {
			t.Fatalf("Parse(%q) set a flag on the wrong side: %+v", args, o)
		}
		checkSplit := func(name string, n, size int64, inBytes bool, rec, bytes int64) {
			t.Helper()
			ok := rec == n && bytes == 0
			if inBytes {
				ok = bytes >= 0 && bytes < size && rec == n/size && rec*size+bytes == n
			}
			if !ok {
				t.Fatalf("Parse(%q): %s=%d (bytes: %v) split into %d blocks of %d and %d bytes", args, name, n, inBytes, rec, size, bytes)
			}
		}
		rec, bytes := o.SkipSplit()
		checkSplit("skip", o.Skip, o.IBS, o.IFlag.SkipBytes, rec, bytes)
		rec, bytes = o.SeekSplit()
		checkSplit("seek", o.Seek, o.OBS, o.OFlag.SeekBytes, rec, bytes)
		rec, bytes = o.CountSplit()
		if o.Count < 0 {
			if rec != -1 || bytes != 0 {
				t.Fatalf("Parse(%q): no count, CountSplit() = %d, %d", args, rec, bytes)
			}
		} else {
			checkSplit("count", o.Count, o.IBS, o.IFlag.CountBytes, rec, bytes)
		}
		for k := range o.Given {
			if !strings.Contains(" if of bs ibs obs cbs count skip seek status conv iflag oflag ", " "+k+" ") {
				t.Fatalf("Parse(%q): Given has %q", args, k)
			}
		}
	})
}
