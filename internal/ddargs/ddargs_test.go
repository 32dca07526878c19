package ddargs

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// op builds the Operands Parse returns for no operands, changed by set.
func op(set func(o *Operands)) *Operands {
	o := &Operands{IBS: 512, OBS: 512, Count: -1}
	if set != nil {
		set(o)
	}
	return o
}

type parseCase struct {
	name string
	args []string // "$IN" and "$OUT" become an empty file and a file in a temp dir
	err  string   // Parse's error text, "" for success
	is   error    // the sentinel err wraps (default ErrUsage)
	want *Operands
	// dd is what the real dd does when it does not fail the same way:
	// "ok" it exits 0, else its first diagnostic starts with this (a
	// failure after parsing). "" means dd agrees with Parse: the same
	// first line, or exit 0 when Parse succeeds.
	dd string
}

var parseCases = []parseCase{
	// Good operands, with the values dd uses.
	{name: "none", want: op(nil)},
	{name: "typical", args: []string{"if=$IN", "of=$OUT", "bs=4M", "iflag=direct,fullblock", "oflag=direct", "conv=fsync", "status=progress"},
		want: op(func(o *Operands) {
			o.If, o.Of, o.IBS, o.OBS, o.BS = "$IN", "$OUT", 4<<20, 4<<20, 4<<20
			o.IFlag.Direct, o.IFlag.Fullblock, o.OFlag.Direct, o.Conv.Fsync = true, true, true, true
			o.Status = StatusProgress
			o.Given = map[string]bool{"if": true, "of": true, "bs": true, "iflag": true, "oflag": true, "conv": true, "status": true}
		})},
	{name: "ibs obs", args: []string{"ibs=1k", "obs=2kB"}, want: op(func(o *Operands) { o.IBS, o.OBS = 1024, 2000 })},
	{name: "bs overrides later ibs", args: []string{"bs=1M", "ibs=1k", "obs=3"}, want: op(func(o *Operands) { o.IBS, o.OBS, o.BS = 1<<20, 1<<20, 1<<20 })},
	{name: "later bs overrides", args: []string{"bs=1", "bs=2b"}, want: op(func(o *Operands) { o.IBS, o.OBS, o.BS = 1024, 1024, 1024 })},
	{name: "largest bs", args: []string{"bs=9223372036854775806"}, dd: "memory exhausted by input buffer",
		want: op(func(o *Operands) { o.IBS, o.OBS, o.BS = math.MaxInt64-1, math.MaxInt64-1, math.MaxInt64-1 })},
	{name: "count skip seek", args: []string{"count=10", "skip=2", "seek=3"},
		want: op(func(o *Operands) {
			o.Count, o.Skip, o.Seek = 10, 2, 3
			o.Given = map[string]bool{"count": true, "skip": true, "seek": true}
		})},
	{name: "iseek oseek", args: []string{"iseek=5", "oseek=6"},
		want: op(func(o *Operands) {
			o.Skip, o.Seek = 5, 6
			o.Given = map[string]bool{"skip": true, "seek": true}
		})},
	{name: "later count wins", args: []string{"count=1", "count=7"}, want: op(func(o *Operands) { o.Count = 7 })},
	{name: "count zero", args: []string{"count=0"}, want: op(func(o *Operands) { o.Count = 0 })},
	{name: "count max is no count", args: []string{"count=9223372036854775807"},
		want: op(func(o *Operands) { o.Given = map[string]bool{"count": true} })},
	{name: "B counts bytes", args: []string{"count=1MB", "skip=3B", "seek=1KiB"},
		want: op(func(o *Operands) {
			o.Count, o.Skip, o.Seek = 1000000, 3, 1024
			o.IFlag.CountBytes, o.IFlag.SkipBytes, o.OFlag.SeekBytes = true, true, true
		})},
	{name: "B of an earlier count forgotten", args: []string{"count=1B", "count=5"}, want: op(func(o *Operands) { o.Count = 5 })},
	{name: "byte flags", args: []string{"iflag=count_bytes,skip_bytes", "oflag=seek_bytes", "count=2", "skip=3", "seek=4"},
		want: op(func(o *Operands) {
			o.Count, o.Skip, o.Seek = 2, 3, 4
			o.IFlag.CountBytes, o.IFlag.SkipBytes, o.OFlag.SeekBytes = true, true, true
		})},
	{name: "byte flags on the wrong side ignored", args: []string{"oflag=count_bytes,skip_bytes", "iflag=seek_bytes"}, want: op(nil)},
	{name: "open flags", args: []string{"iflag=noatime,nofollow,noctty,nonblock,append,dsync,sync,nocache", "oflag=noatime", "oflag=nofollow,noctty,nonblock,append,dsync,sync,nocache"},
		want: op(func(o *Operands) {
			f := Flags{NoATime: true, NoFollow: true, NoCtty: true, NonBlock: true, Append: true, Dsync: true, Sync: true, Nocache: true}
			o.IFlag, o.OFlag = f, f
			o.Warnings = []string{appendWarning}
		})},
	{name: "convs", args: []string{"conv=notrunc,sync", "conv=noerror,fsync,fdatasync,sparse,excl", "of=$OUT"}, dd: "failed to open '$OUT': File exists",
		want: op(func(o *Operands) {
			o.Of = "$OUT"
			o.Conv = Conv{Notrunc: true, Sync: true, Noerror: true, Fsync: true, Fdatasync: true, Sparse: true, Excl: true}
		})},
	{name: "nocreat", args: []string{"conv=nocreat", "of=$OUT"}, want: op(func(o *Operands) { o.Of, o.Conv.Nocreat = "$OUT", true })},
	{name: "status exclusive", args: []string{"status=none,progress"}, want: op(func(o *Operands) { o.Status = StatusProgress })},
	{name: "status last wins", args: []string{"status=progress", "status=noxfer"}, want: op(func(o *Operands) { o.Status = StatusNoxfer })},
	{name: "status none", args: []string{"status=none"}, want: op(func(o *Operands) { o.Status = StatusNone })},
	{name: "leading --", args: []string{"--", "if=$IN"}, want: op(func(o *Operands) { o.If = "$IN" })},
	{name: "trailing --", args: []string{"if=$IN", "--"}, want: op(func(o *Operands) { o.If = "$IN" })},
	{name: "value with =", args: []string{"if==x"}, dd: "failed to open '=x'", want: op(func(o *Operands) { o.If = "=x" })},
	{name: "zero multiplier warning", args: []string{"count=0x5", "skip=00x5"},
		want: op(func(o *Operands) {
			o.Count = 0
			o.Warnings = []string{zeroMultiplierWarning}
		})},
	{name: "seek that fits", args: []string{"of=/dev/null", "seek=18014398509481983"},
		want: op(func(o *Operands) { o.Of, o.Seek = "/dev/null", 18014398509481983 })},
	{name: "seek in bytes that fits", args: []string{"of=/dev/null", "seek=9223372036854775807B"},
		want: op(func(o *Operands) { o.Of, o.Seek, o.OFlag.SeekBytes = "/dev/null", math.MaxInt64, true })},
	{name: "huge seek with notrunc", args: []string{"of=/dev/null", "conv=notrunc", "seek=9223372036854775807"}, dd: "/dev/null: cannot seek",
		want: op(func(o *Operands) { o.Of, o.Seek, o.Conv.Notrunc = "/dev/null", math.MaxInt64, true })},
	{name: "huge seek on stdout", args: []string{"seek=9223372036854775807"}, dd: "'standard output': cannot seek",
		want: op(func(o *Operands) { o.Seek = math.MaxInt64 })},
	{name: "block and unblock without cbs are dropped", args: []string{"conv=block,unblock"},
		want: op(func(o *Operands) { o.Given = map[string]bool{"conv": true} })},

	// Options, as getopt_long handles them before dd.
	{name: "help", args: []string{"if=$IN", "--help", "-x"}, is: ErrHelp, err: "help requested", dd: "ok"},
	{name: "help prefix", args: []string{"--he"}, is: ErrHelp, err: "help requested", dd: "ok"},
	{name: "version prefix", args: []string{"--v"}, is: ErrVersion, err: "version requested", dd: "ok"},
	{name: "short option", args: []string{"if=$IN", "-xy", "--help"}, err: "invalid option -- 'x'"},
	{name: "h is no option", args: []string{"-h"}, err: "invalid option -- 'h'"},
	{name: "long option", args: []string{"--foo"}, err: "unrecognized option '--foo'"},
	{name: "long option with value", args: []string{"--foo=bar"}, err: "unrecognized option '--foo=bar'"},
	{name: "three dashes", args: []string{"---"}, err: "unrecognized option '---'"},
	{name: "ambiguous", args: []string{"--=x"}, err: "option '--=x' is ambiguous; possibilities: '--help' '--version'"},
	{name: "help with argument", args: []string{"--h=1"}, err: "option '--help' doesn't allow an argument"},
	{name: "version with argument", args: []string{"--version="}, err: "option '--version' doesn't allow an argument"},
	{name: "option after operand", args: []string{"foo", "--bar"}, err: "unrecognized option '--bar'"},
	{name: "dash after --", args: []string{"--", "-x"}, err: "unrecognized operand '-x'"},
	{name: "second --", args: []string{"--", "--"}, err: "unrecognized operand '--'"},
	{name: "help after --", args: []string{"--", "--help"}, err: "unrecognized operand '--help'"},
	{name: "lone dash", args: []string{"-"}, err: "unrecognized operand '-'"},

	// Operands dd does not know.
	{name: "no =", args: []string{"foo"}, err: "unrecognized operand 'foo'"},
	{name: "unknown key", args: []string{"foo=bar"}, err: "unrecognized operand 'foo=bar'"},
	{name: "empty key", args: []string{"="}, err: "unrecognized operand '='"},
	{name: "key alone", args: []string{"if"}, err: "unrecognized operand 'if'"},
	{name: "upper case", args: []string{"IF=/dev/null"}, err: "unrecognized operand 'IF=/dev/null'"},
	{name: "leading blank", args: []string{" if=/dev/null"}, err: "unrecognized operand ' if=/dev/null'"},
	{name: "ooseek", args: []string{"ooseek=1"}, err: "unrecognized operand 'ooseek=1'"},
	{name: "quoting", args: []string{"a'b\\c\td\x01\xff\x7f\n é"}, err: `unrecognized operand 'a\'b\\c\td\001\377\177\n \303\251'`},
	{name: "first bad operand wins", args: []string{"foo", "count=x"}, err: "unrecognized operand 'foo'"},

	// Numbers.
	{name: "trailing x", args: []string{"count=1x"}, err: "invalid number: '1x'"},
	{name: "empty number", args: []string{"count="}, err: "invalid number: ''"},
	{name: "negative", args: []string{"skip=-1"}, err: "invalid number: '-1'"},
	{name: "minus zero", args: []string{"seek=-0"}, err: "invalid number: '-0'"},
	{name: "two products", args: []string{"count=2x3x4"}, err: "invalid number: '2x3x4'"},
	{name: "Q suffix", args: []string{"count=1Q"}, err: "invalid number: '1Q'"},
	{name: "lower m", args: []string{"count=1m"}, err: "invalid number: '1m'"},
	{name: "count overflow", args: []string{"count=9223372036854775808"}, err: "invalid number: '9223372036854775808': Value too large for defined data type"},
	{name: "skip overflow", args: []string{"skip=99999999999999999999"}, err: "invalid number: '99999999999999999999': Value too large for defined data type"},
	{name: "suffix overflow", args: []string{"seek=1Z"}, err: "invalid number: '1Z': Value too large for defined data type"},
	{name: "product overflow", args: []string{"count=1Ex8"}, err: "invalid number: '1Ex8': Value too large for defined data type"},
	{name: "overflow then junk", args: []string{"count=1Zq"}, err: "invalid number: '1Zq': Value too large for defined data type"},
	{name: "zero bs", args: []string{"bs=0"}, err: "invalid number: '0'"},
	{name: "zero ibs", args: []string{"ibs=0"}, err: "invalid number: '0'"},
	{name: "zero obs", args: []string{"obs=0x1"}, err: "invalid number: '0x1'"},
	{name: "zero bs with junk", args: []string{"bs=0q"}, err: "invalid number: '0q'"},
	{name: "bs too large", args: []string{"bs=9223372036854775807"}, err: "invalid number: '9223372036854775807': Value too large for defined data type"},
	{name: "bs too large with junk", args: []string{"bs=9223372036854775807q"}, err: "invalid number: '9223372036854775807q': Value too large for defined data type"},
	{name: "seek max with junk", args: []string{"seek=9223372036854775807q"}, err: "invalid number: '9223372036854775807q'"},
	{name: "zero cbs", args: []string{"cbs=0"}, err: "invalid number: '0'"},
	{name: "cbs too large", args: []string{"cbs=9223372036854775808"}, err: "invalid number: '9223372036854775808': Value too large for defined data type"},
	{name: "number quoting", args: []string{"count=a\tb"}, err: `invalid number: 'a\tb'`},
	{name: "first bad number wins", args: []string{"count=x", "foo"}, err: "invalid number: 'x'"},
	{name: "number checked before key", args: []string{"foo=1x"}, err: "unrecognized operand 'foo=1x'"},

	// Symbol lists.
	{name: "bad conv", args: []string{"conv=notrunc,foo,bar"}, err: "invalid conversion: 'foo'"},
	{name: "empty conv", args: []string{"conv="}, err: "invalid conversion: ''"},
	{name: "trailing comma", args: []string{"conv=notrunc,"}, err: "invalid conversion: ''"},
	{name: "leading comma", args: []string{"conv=,notrunc"}, err: "invalid conversion: ''"},
	{name: "conv quoting", args: []string{"conv=a'b"}, err: `invalid conversion: 'a\'b'`},
	{name: "bad iflag", args: []string{"iflag=foo"}, err: "invalid input flag: 'foo'"},
	{name: "empty iflag", args: []string{"iflag="}, err: "invalid input flag: ''"},
	{name: "binary is not a Linux flag", args: []string{"iflag=binary"}, err: "invalid input flag: 'binary'"},
	{name: "text is not a Linux flag", args: []string{"iflag=text"}, err: "invalid input flag: 'text'"},
	{name: "cio is not a Linux flag", args: []string{"oflag=cio"}, err: "invalid output flag: 'cio'"},
	{name: "nolinks is not a Linux flag", args: []string{"oflag=nolinks"}, err: "invalid output flag: 'nolinks'"},
	{name: "conv name as flag", args: []string{"oflag=notrunc"}, err: "invalid output flag: 'notrunc'"},
	{name: "bad status", args: []string{"status=x"}, err: "invalid status level: 'x'"},
	{name: "empty status", args: []string{"status="}, err: "invalid status level: ''"},
	{name: "bad status in list", args: []string{"status=noxfer,bad"}, err: "invalid status level: 'bad'"},

	// Checks after all operands, in dd's order.
	{name: "output fullblock", args: []string{"oflag=fullblock"}, err: "invalid output flag: 'fullblock'"},
	{name: "fullblock before conflicts", args: []string{"conv=excl,nocreat", "oflag=fullblock"}, err: "invalid output flag: 'fullblock'"},
	{name: "ascii ebcdic", args: []string{"conv=ascii,ebcdic"}, err: "cannot combine any two of {ascii,ebcdic,ibm}", is: ErrConflict},
	{name: "ibm ebcdic before excl", args: []string{"conv=excl,nocreat", "conv=ibm,ebcdic"}, err: "cannot combine any two of {ascii,ebcdic,ibm}", is: ErrConflict},
	{name: "block unblock with cbs", args: []string{"conv=block,unblock", "cbs=1"}, err: "cannot combine block and unblock", is: ErrConflict},
	{name: "ascii implies unblock", args: []string{"conv=ascii,block", "cbs=2"}, err: "cannot combine block and unblock", is: ErrConflict},
	{name: "lcase ucase", args: []string{"conv=lcase,ucase"}, err: "cannot combine lcase and ucase", is: ErrConflict},
	{name: "excl nocreat", args: []string{"conv=excl", "conv=nocreat"}, err: "cannot combine excl and nocreat", is: ErrConflict},
	{name: "excl before direct nocache", args: []string{"oflag=direct,nocache", "conv=excl,nocreat"}, err: "cannot combine excl and nocreat", is: ErrConflict},
	{name: "input direct nocache", args: []string{"iflag=nocache", "iflag=direct"}, err: "cannot combine direct and nocache", is: ErrConflict},
	{name: "output direct nocache", args: []string{"oflag=nocache,direct"}, err: "cannot combine direct and nocache", is: ErrConflict},

	{name: "ascii", args: []string{"conv=ascii"}, want: op(func(o *Operands) {
		o.Text.ASCII = true // unblock is dropped without cbs=
		o.Given = map[string]bool{"conv": true}
	})},
	{name: "ebcdic with cbs blocks", args: []string{"conv=ebcdic", "cbs=80"}, want: op(func(o *Operands) {
		o.Text = Text{EBCDIC: true, Block: true, CBS: 80}
		o.Given = map[string]bool{"conv": true, "cbs": true}
	})},
	{name: "ibm", args: []string{"conv=ibm"}, want: op(func(o *Operands) { o.Text.IBM = true; o.Given = map[string]bool{"conv": true} })},
	{name: "unblock", args: []string{"conv=unblock", "cbs=1"}, want: op(func(o *Operands) {
		o.Text = Text{Unblock: true, CBS: 1}
		o.Given = map[string]bool{"conv": true, "cbs": true}
	})},
	{name: "ucase swab", args: []string{"conv=notrunc,ucase", "conv=swab"}, want: op(func(o *Operands) {
		o.Conv.Notrunc, o.Text.Ucase, o.Text.Swab = true, true, true
		o.Given = map[string]bool{"conv": true}
	})},
	{name: "lcase", args: []string{"conv=lcase"}, want: op(func(o *Operands) { o.Text.Lcase = true; o.Given = map[string]bool{"conv": true} })},
	{name: "cbs alone", args: []string{"cbs=80"}, want: op(func(o *Operands) { o.Text.CBS = 80; o.Given = map[string]bool{"cbs": true} })},

	// What dd accepts and blkpipe does not implement.
	{name: "input directory", args: []string{"iflag=directory"}, err: "input flag 'directory' is not supported by blkpipe", dd: "setting flags for 'standard input': Not a directory"},
	{name: "output directory", args: []string{"oflag=directory", "of=$OUT"}, err: "output flag 'directory' is not supported by blkpipe", dd: "failed to open '$OUT'"},
	{name: "dd errors before unsupported", args: []string{"iflag=directory", "conv=lcase,ucase"}, err: "cannot combine lcase and ucase", is: ErrConflict},
	{name: "dd number errors before unsupported", args: []string{"iflag=directory", "count=x"}, err: "invalid number: 'x'"},

	// Checks dd makes before it opens the files.
	{name: "empty if", args: []string{"if="}, err: "failed to open '': No such file or directory"},
	{name: "empty of", args: []string{"of="}, err: "failed to open '': No such file or directory"},
	{name: "empty if first", args: []string{"of=", "if="}, err: "failed to open '': No such file or directory"},
	{name: "unsupported before empty if", args: []string{"if=", "iflag=directory"}, err: "input flag 'directory' is not supported by blkpipe", dd: "failed to open ''"},
	{name: "seek too large", args: []string{"of=/dev/null", "seek=9223372036854775807"},
		err: "offset too large: cannot truncate to a length of seek=9223372036854775807 (512-byte) blocks"},
	{name: "seek just too large", args: []string{"of=$OUT", "seek=18014398509481984"},
		err: "offset too large: cannot truncate to a length of seek=18014398509481984 (512-byte) blocks"},
	{name: "seek too large for obs", args: []string{"of=/dev/null", "obs=1M", "seek=8796093022208"},
		err: "offset too large: cannot truncate to a length of seek=8796093022208 (1048576-byte) blocks"},
	{name: "seek bytes too large", args: []string{"of=/dev/null", "bs=3", "oflag=seek_bytes", "seek=9223372036854775807", "oflag=seek_bytes"},
		want: op(func(o *Operands) {
			o.Of, o.IBS, o.OBS, o.BS, o.Seek, o.OFlag.SeekBytes = "/dev/null", 3, 3, 3, math.MaxInt64, true
		})},
	{name: "seek overflow before empty of", args: []string{"of=", "seek=9223372036854775807"},
		err: "offset too large: cannot truncate to a length of seek=9223372036854775807 (512-byte) blocks"},
}

// expand replaces "$IN" and "$OUT" with paths in dir.
func expand(s, in, out string) string {
	return strings.NewReplacer("$IN", in, "$OUT", out).Replace(s)
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			const in, out = "/input", "/output"
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = expand(a, in, out)
			}
			got, err := Parse(args)
			if tc.err != "" {
				is := tc.is
				if is == nil {
					is = ErrUsage
				}
				if err == nil || err.Error() != tc.err || !errors.Is(err, is) {
					t.Fatalf("Parse(%q) = %+v, %v; want error %q wrapping %v", args, got, err, tc.err, is)
				}
				if got != nil {
					t.Errorf("Parse(%q) returned %+v with its error", args, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", args, err)
			}
			want := *tc.want
			want.If, want.Of = expand(want.If, in, out), expand(want.Of, in, out)
			if want.Given == nil {
				want.Given = got.Given
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", args, got, &want)
			}
		})
	}
}

// TestParseAgainstDD runs GNU dd on every case of TestParse.
func TestParseAgainstDD(t *testing.T) {
	needDD(t)
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := dir+"/in", dir+"/out"
			for _, p := range []string{in, out} {
				if err := writeEmpty(p); err != nil {
					t.Fatal(err)
				}
			}
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = expand(a, in, out)
			}
			r := runDD(t, dir, args...)
			switch {
			case tc.dd == "ok":
				if r.code != 0 {
					t.Errorf("dd %q: exit %d, %q; want success", args, r.code, r.first)
				}
			case tc.dd != "":
				if want := expand(tc.dd, in, out); r.code == 0 || !strings.HasPrefix(r.first, want) {
					t.Errorf("dd %q: exit %d, %q; want failure starting %q", args, r.code, r.first, want)
				}
			case tc.err != "":
				if r.code == 0 || r.first != tc.err {
					t.Errorf("dd %q: exit %d, %q; want %q", args, r.code, r.first, tc.err)
				}
			default:
				if r.code != 0 {
					t.Errorf("dd %q: exit %d, %q; want success", args, r.code, r.first)
				}
			}
			if tc.err == "" {
				if got, want := len(r.warnings), len(tc.want.Warnings); got != want {
					t.Errorf("dd %q: %d zero-multiplier warnings, Parse %d", args, got, want)
				}
			}
		})
	}
}

func writeEmpty(path string) error { return os.WriteFile(path, nil, 0o644) }

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		args              []string
		skip, seek, count [2]int64
		warnPartialRead   bool
	}{
		{args: nil, count: [2]int64{-1, 0}},
		{args: []string{"skip=3", "seek=4", "count=5"}, skip: [2]int64{3, 0}, seek: [2]int64{4, 0}, count: [2]int64{5, 0}},
		{args: []string{"ibs=100", "obs=7", "skip=250B", "seek=20B", "count=1001B"},
			skip: [2]int64{2, 50}, seek: [2]int64{2, 6}, count: [2]int64{10, 1}},
		{args: []string{"bs=10", "iflag=skip_bytes,count_bytes", "oflag=seek_bytes", "skip=9", "seek=10", "count=0"},
			skip: [2]int64{0, 9}, seek: [2]int64{1, 0}, count: [2]int64{0, 0}},
		{args: []string{"bs=4k", "skip=1"}, skip: [2]int64{1, 0}, count: [2]int64{-1, 0}, warnPartialRead: true},
		{args: []string{"bs=4k", "skip=1", "iflag=fullblock"}, skip: [2]int64{1, 0}, count: [2]int64{-1, 0}},
		{args: []string{"ibs=4k", "skip=1"}, skip: [2]int64{1, 0}, count: [2]int64{-1, 0}},
		{args: []string{"bs=4k", "skip=1B"}, skip: [2]int64{0, 1}, count: [2]int64{-1, 0}},
		{args: []string{"bs=4k", "count=1"}, count: [2]int64{1, 0}, warnPartialRead: true},
		{args: []string{"bs=4k", "count=0"}, count: [2]int64{0, 0}},
		{args: []string{"bs=4k", "count=4097B"}, count: [2]int64{1, 1}, warnPartialRead: true},
		{args: []string{"bs=4k", "oflag=direct"}, count: [2]int64{-1, 0}, warnPartialRead: true},
		{args: []string{"bs=4k", "iflag=direct"}, count: [2]int64{-1, 0}, warnPartialRead: true},
	} {
		o, err := Parse(tc.args)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		var got [3][2]int64
		got[0][0], got[0][1] = o.SkipSplit()
		got[1][0], got[1][1] = o.SeekSplit()
		got[2][0], got[2][1] = o.CountSplit()
		if want := [3][2]int64{tc.skip, tc.seek, tc.count}; got != want {
			t.Errorf("%q: skip, seek, count split = %v, want %v", tc.args, got, want)
		}
		if got := o.WarnPartialRead(); got != tc.warnPartialRead {
			t.Errorf("%q: WarnPartialRead() = %v, want %v", tc.args, got, tc.warnPartialRead)
		}
	}
}
