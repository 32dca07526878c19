// Package ddargs parses GNU dd's key=value operands (bs=4M if=/dev/x
// iflag=direct) into a typed Operands, with the semantics and the error
// wording of GNU coreutils dd 9.1 on Linux.
//
// Every error Parse returns reads exactly as the first line dd 9.1 prints
// after "dd: " for the same arguments in the C locale ("invalid number:
// '1x'", "unrecognized operand 'foo'"), except for what blkpipe does not
// implement, which dd accepts and Parse rejects with "... is not supported
// by blkpipe": the flag "directory". The text conversions (conv=ascii,
// ebcdic, ibm, block, unblock, lcase, ucase, swab with cbs=) are parsed
// into Operands.Text; Text.Table and the functions of conv.go apply them
// as dd does. The package is pure Go and safe for concurrent use.
package ddargs

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// ErrUsage is wrapped by every error Parse and ParseNumber return; tools
// map it to exit code 2.
var ErrUsage = errors.New("usage")

// ErrHelp is returned by Parse for a --help option (or a prefix such as
// --he, as getopt_long accepts), ErrVersion for --version: dd prints its
// help or version and exits 0. They do not wrap ErrUsage.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// usageError is a one-line message that wraps ErrUsage. warnings are the
// diagnostics dd prints before it (see Warnings).
type usageError struct {
	msg      string
	warnings []string
	conflict bool // wraps ErrConflict instead of ErrUsage
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error {
	if e.conflict {
		return ErrConflict
	}
	return ErrUsage
}

func usageErr(msg string) error { return &usageError{msg: msg} }

// Warnings returns the warnings dd 9.1 prints before the error err that
// Parse returned, in order and without "dd: " ("warning: '0x' is a zero
// multiplier; ..." for "bs=0x5", which is then an invalid number), or nil.
// Print them as "tool: <warning>" before the error.
func Warnings(err error) []string {
	var u *usageError
	if errors.As(err, &u) {
		return u.warnings
	}
	return nil
}

// Status is the status= level.
type Status int

const (
	StatusDefault  Status = iota // no status= operand
	StatusNone                   // status=none
	StatusNoxfer                 // status=noxfer
	StatusProgress               // status=progress
)

// Conv holds conv='s flags other than the text conversions (see Text).
type Conv struct{ Notrunc, Sync, Noerror, Fsync, Fdatasync, Sparse, Excl, Nocreat bool }

// Flags holds iflag=/oflag= flags. CountBytes, SkipBytes and Fullblock are
// input-only and SeekBytes output-only: as dd does, Parse rejects
// oflag=fullblock and silently ignores the others on the wrong side (they
// stay false). NoATime, NoFollow, NoCtty and NonBlock are plain open(2)
// flags. Direct and Nocache are never both set (dd refuses the pair).
type Flags struct {
	Direct, Fullblock, Nocache, Dsync, Sync, CountBytes, SkipBytes, SeekBytes, Append bool
	NoATime, NoFollow, NoCtty, NonBlock                                               bool
}

// Operands is the parsed command line.
type Operands struct {
	If, Of   string // "" = standard input / standard output (Parse rejects if= and of= with empty values)
	IBS, OBS int64  // in force: 512 unless ibs=/obs=/bs= given; bs= sets both, whatever the order
	BS       int64  // 0 unless bs= given. When >0, dd does NOT reblock (each read is one write)
	Count    int64  // -1 when count= not given (or given as MaxInt64, which dd treats as no limit); units: ibs blocks, or bytes with IFlag.CountBytes
	Skip     int64  // skip=/iseek=; units: ibs blocks, or bytes with IFlag.SkipBytes
	Seek     int64  // seek=/oseek=; units: obs blocks, or bytes with OFlag.SeekBytes
	Status   Status // the last status= given
	Conv     Conv
	Text     Text  // conv=ascii,ebcdic,ibm,block,unblock,lcase,ucase,swab and cbs=
	IFlag    Flags // a "B" in count= or skip= sets CountBytes or SkipBytes, as in dd 9.1 ("count=1MB")
	OFlag    Flags // a "B" in seek= sets SeekBytes
	// Given holds the canonical keys the user gave: "if", "of", "bs",
	// "ibs", "obs", "cbs", "count", "skip" (also for iseek=), "seek" (also for
	// oseek=), "status", "conv", "iflag", "oflag".
	Given map[string]bool
	// Warnings are the non-fatal diagnostics dd 9.1 prints to stderr
	// before copying, in order, without the "dd: " prefix: "warning: '0x'
	// is a zero multiplier; use '00x' if that is intended" for each number
	// written like "0x512", then "you probably want conv=notrunc with
	// oflag=append" for oflag=append without conv=notrunc. Print them as
	// "tool: <warning>", whatever the status= level (dd does).
	Warnings []string
}

// Bits of conv=, in dd.c's terms. The text conversions are parsed so that
// dd's own errors ("cannot combine lcase and ucase") come first.
const (
	cASCII uint32 = 1 << iota
	cEBCDIC
	cIBM
	cBlock
	cUnblock
	cLcase
	cUcase
	cSwab
	cSparse
	cNoerror
	cNocreat
	cExcl
	cNotrunc
	cSync
	cFdatasync
	cFsync
)

// Bits of iflag=/oflag=.
const (
	fAppend uint32 = 1 << iota
	fDirect
	fDirectory
	fDsync
	fNoatime
	fNocache
	fNoctty
	fNofollow
	fNonblock
	fSync
	fFullblock
	fCountBytes
	fSkipBytes
	fSeekBytes
)

// symbol is an entry of dd.c's symbol_value tables. A zero value means
// the flag does not exist on this platform and dd reports it as invalid.
type symbol struct {
	name        string
	value       uint32
	unsupported bool // valid for dd, not implemented by blkpipe
}

var conversions = []symbol{
	{"ascii", cASCII | cUnblock, false},
	{"ebcdic", cEBCDIC | cBlock, false},
	{"ibm", cIBM | cBlock, false},
	{"block", cBlock, false},
	{"unblock", cUnblock, false},
	{"lcase", cLcase, false},
	{"ucase", cUcase, false},
	{"sparse", cSparse, false},
	{"swab", cSwab, false},
	{"noerror", cNoerror, false},
	{"nocreat", cNocreat, false},
	{"excl", cExcl, false},
	{"notrunc", cNotrunc, false},
	{"sync", cSync, false},
	{"fdatasync", cFdatasync, false},
	{"fsync", cFsync, false},
}

// flagSymbols follows dd.c's flags table on Linux/glibc, where O_BINARY,
// O_TEXT, O_CIO and O_NOLINKS are 0: dd 9.1 rejects iflag=binary as
// "invalid input flag: 'binary'", and so does Parse.
var flagSymbols = []symbol{
	{"append", fAppend, false},
	{"binary", 0, false},
	{"cio", 0, false},
	{"direct", fDirect, false},
	{"directory", fDirectory, true},
	{"dsync", fDsync, false},
	{"noatime", fNoatime, false},
	{"nocache", fNocache, false},
	{"noctty", fNoctty, false},
	{"nofollow", fNofollow, false},
	{"nolinks", 0, false},
	{"nonblock", fNonblock, false},
	{"sync", fSync, false},
	{"text", 0, false},
	{"fullblock", fFullblock, false},
	{"count_bytes", fCountBytes, false},
	{"skip_bytes", fSkipBytes, false},
	{"seek_bytes", fSeekBytes, false},
}

var statuses = []symbol{
	{"none", uint32(StatusNone), false},
	{"noxfer", uint32(StatusNoxfer), false},
	{"progress", uint32(StatusProgress), false},
}

// parseSymbols is dd.c's parse_symbols: a comma-separated list of names
// from table, OR-ed together, or with exclusive only the last one. An
// unknown or empty name is "<what>: 'name'". The first name dd knows but
// blkpipe does not implement is returned in unsupported.
func parseSymbols(str string, table []symbol, exclusive bool, what string) (value uint32, unsupported string, err error) {
	for {
		name, rest, more := strings.Cut(str, ",")
		var found *symbol
		for i := range table {
			if table[i].name == name && table[i].value != 0 {
				found = &table[i]
				break
			}
		}
		if found == nil {
			return 0, "", usageErr(what + ": " + quote(name))
		}
		if found.unsupported && unsupported == "" {
			unsupported = name
		}
		if exclusive {
			value = found.value
		} else {
			value |= found.value
		}
		if !more {
			return value, unsupported, nil
		}
		str = rest
	}
}

// longOptions are the options dd accepts, through
// parse_gnu_standard_options_only and glibc's getopt_long.
var longOptions = []struct {
	name string
	err  error
}{{"help", ErrHelp}, {"version", ErrVersion}}

// scanOptions does what getopt_long does to dd's arguments before dd sees
// its operands: options may come anywhere (arguments are permuted) until
// a "--", which is dropped; "-" alone is an operand. It returns the
// operands in order, or the first option's error or ErrHelp/ErrVersion.
func scanOptions(args []string) ([]string, error) {
	operands := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(operands, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		if a[1] != '-' {
			// dd has no short options; glibc names the first letter.
			return nil, usageErr("invalid option -- '" + a[1:2] + "'")
		}
		name, _, hasArg := strings.Cut(a[2:], "=")
		var matches []int
		exact := -1
		for j, o := range longOptions {
			if o.name == name {
				exact = j
			}
			if strings.HasPrefix(o.name, name) {
				matches = append(matches, j)
			}
		}
		if exact >= 0 {
			matches = []int{exact}
		}
		switch {
		case len(matches) == 0:
			return nil, usageErr("unrecognized option '" + a + "'")
		case len(matches) > 1:
			msg := "option '" + a + "' is ambiguous; possibilities:"
			for _, j := range matches {
				msg += " '--" + longOptions[j].name + "'"
			}
			return nil, usageErr(msg)
		case hasArg:
			return nil, usageErr("option '--" + longOptions[matches[0]].name + "' doesn't allow an argument")
		default:
			return nil, longOptions[matches[0]].err
		}
	}
	return operands, nil
}

const (
	zeroMultiplierWarning = "warning: '0x' is a zero multiplier; use '00x' if that is intended"
	appendWarning         = "you probably want conv=notrunc with oflag=append"
	// maxBlocksize is dd's MIN (IDX_MAX - 1, MIN (SSIZE_MAX, OFF_T_MAX)).
	maxBlocksize = math.MaxInt64 - 1
)

// Parse parses dd operands, each "key=value", after dropping options as
// dd's getopt does (a "--" ends options and is skipped; --help and
// --version give ErrHelp and ErrVersion). Later operands override
// earlier ones as in dd; conv=, iflag= and oflag= accumulate.
//
// Errors wrap ErrUsage and are worded as dd 9.1's first line of
// diagnostics in the C locale, without "dd: ". Parse checks in dd's order:
// each operand as it comes, then oflag=fullblock, conflicting conversions
// and direct with nocache; then, where dd would accept, what blkpipe does
// not support (the first in argument order); then the checks dd makes
// before opening files: an empty if= or of= ("failed to open" the empty
// name), and a seek= whose offset does not fit an off_t when of= is given
// without conv=notrunc ("offset too large: ...").
//
// Option errors ("unrecognized option '--foo'") show the argument's bytes
// as they are, as glibc's getopt does; operand errors escape them. When
// Parse fails, Warnings(err) holds the warnings dd prints before its error.
func Parse(args []string) (*Operands, error) {
	o, err := parse(args)
	if u := (*usageError)(nil); errors.As(err, &u) && o != nil {
		u.warnings = o.Warnings
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// parse is Parse; on a usage error it also returns the Operands so far,
// whose Warnings dd would have printed before the error.
func parse(args []string) (*Operands, error) {
	operands, err := scanOptions(args)
	if err != nil {
		return nil, err
	}

	o := &Operands{Count: -1, Given: make(map[string]bool)}
	var (
		blocksize, ibs, obs, cbs int64
		count                    int64 = math.MaxInt64
		skip, seek               int64
		countB, skipB, seekB     bool
		conv, iflag, oflag       uint32
		unsupported              string
	)
	noteUnsupported := func(msg string) {
		if unsupported == "" {
			unsupported = msg
		}
	}

	for _, arg := range operands {
		key, val, ok := strings.Cut(arg, "=")
		if !ok {
			return o, usageErr("unrecognized operand " + quote(arg))
		}
		var bad string
		switch key {
		case "if":
			o.If = val
		case "of":
			o.Of = val
		case "conv", "iflag", "oflag":
			table, what, dst := conversions, "conversion", &conv
			switch key {
			case "iflag":
				table, what, dst = flagSymbols, "input flag", &iflag
			case "oflag":
				table, what, dst = flagSymbols, "output flag", &oflag
			}
			v, u, err := parseSymbols(val, table, false, "invalid "+what)
			if err != nil {
				return o, err
			}
			*dst |= v
			if u != "" {
				bad = what + " " + quote(u)
			}
		case "status":
			v, _, err := parseSymbols(val, statuses, true, "invalid status level")
			if err != nil {
				return o, err
			}
			o.Status = Status(v)
		default:
			// dd parses the number before it knows whether the key
			// exists, so "foo=0x1" warns, then says "unrecognized".
			n, e, warn := parseInteger(val)
			if warn {
				o.Warnings = append(o.Warnings, zeroMultiplierWarning)
			}
			hasB := strings.IndexByte(val, 'B') >= 0
			min, max := int64(0), int64(math.MaxInt64)
			var dst *int64
			switch key {
			case "ibs":
				min, max, dst = 1, maxBlocksize, &ibs
			case "obs":
				min, max, dst = 1, maxBlocksize, &obs
			case "bs":
				min, max, dst = 1, maxBlocksize, &blocksize
			case "cbs":
				min, dst = 1, &cbs
			case "skip", "iseek":
				key, skip, skipB = "skip", n, hasB
			case "seek", "oseek":
				key, seek, seekB = "seek", n, hasB
			case "count":
				count, countB = n, hasB
			default:
				return o, usageErr("unrecognized operand " + quote(arg))
			}
			if n < min {
				e = longintInvalid
			} else if n > max {
				e = longintOverflow
			}
			if e != longintOK {
				return o, numberError(val, e)
			}
			if dst != nil {
				*dst = n
			}
		}
		if bad != "" {
			noteUnsupported(bad + " is not supported by blkpipe")
		}
		o.Given[key] = true
	}

	if blocksize != 0 {
		ibs, obs = blocksize, blocksize
	}
	if ibs == 0 {
		ibs = 512
	}
	if obs == 0 {
		obs = 512
	}
	if cbs == 0 {
		// Without cbs=, dd quietly drops block and unblock.
		conv &^= cBlock | cUnblock
	}
	if skipB {
		iflag |= fSkipBytes
	}
	if countB {
		iflag |= fCountBytes
	}
	if seekB {
		oflag |= fSeekBytes
	}

	switch {
	case oflag&fFullblock != 0:
		return o, usageErr("invalid output flag: 'fullblock'")
	case bits.OnesCount32(conv&(cASCII|cEBCDIC|cIBM)) > 1:
		return o, conflictErr("cannot combine any two of {ascii,ebcdic,ibm}")
	case bits.OnesCount32(conv&(cBlock|cUnblock)) > 1:
		return o, conflictErr("cannot combine block and unblock")
	case bits.OnesCount32(conv&(cLcase|cUcase)) > 1:
		return o, conflictErr("cannot combine lcase and ucase")
	case bits.OnesCount32(conv&(cExcl|cNocreat)) > 1:
		return o, conflictErr("cannot combine excl and nocreat")
	case bits.OnesCount32(iflag&(fDirect|fNocache)) > 1 || bits.OnesCount32(oflag&(fDirect|fNocache)) > 1:
		return o, conflictErr("cannot combine direct and nocache")
	}
	if oflag&fAppend != 0 && conv&cNotrunc == 0 {
		o.Warnings = append(o.Warnings, appendWarning)
	}
	switch {
	case unsupported != "":
		return o, usageErr(unsupported)
	case o.Given["if"] && o.If == "":
		return o, usageErr("failed to open '': No such file or directory")
	}

	o.IBS, o.OBS, o.BS = ibs, obs, blocksize
	if count != math.MaxInt64 {
		o.Count = count
	}
	o.Skip, o.Seek = skip, seek
	o.Conv = Conv{
		Notrunc:   conv&cNotrunc != 0,
		Sync:      conv&cSync != 0,
		Noerror:   conv&cNoerror != 0,
		Fsync:     conv&cFsync != 0,
		Fdatasync: conv&cFdatasync != 0,
		Sparse:    conv&cSparse != 0,
		Excl:      conv&cExcl != 0,
		Nocreat:   conv&cNocreat != 0,
	}
	o.Text = textOf(conv, cbs)
	o.IFlag = flagsOf(iflag &^ fSeekBytes)
	o.OFlag = flagsOf(oflag &^ (fCountBytes | fSkipBytes))

	if o.Given["of"] && !o.Conv.Notrunc {
		records, bytes := o.SeekSplit()
		hi, lo := bits.Mul64(uint64(records), uint64(obs))
		if hi != 0 || lo > math.MaxInt64 || lo+uint64(bytes) > math.MaxInt64 {
			return o, usageErr("offset too large: cannot truncate to a length of seek=" +
				strconv.FormatInt(records, 10) + " (" + strconv.FormatInt(obs, 10) + "-byte) blocks")
		}
	}
	if o.Given["of"] && o.Of == "" {
		return o, usageErr("failed to open '': No such file or directory")
	}
	return o, nil
}

func flagsOf(f uint32) Flags {
	return Flags{
		Direct:     f&fDirect != 0,
		Fullblock:  f&fFullblock != 0,
		Nocache:    f&fNocache != 0,
		Dsync:      f&fDsync != 0,
		Sync:       f&fSync != 0,
		CountBytes: f&fCountBytes != 0,
		SkipBytes:  f&fSkipBytes != 0,
		SeekBytes:  f&fSeekBytes != 0,
		Append:     f&fAppend != 0,
		NoATime:    f&fNoatime != 0,
		NoFollow:   f&fNofollow != 0,
		NoCtty:     f&fNoctty != 0,
		NonBlock:   f&fNonblock != 0,
	}
}

// split is dd's scanargs arithmetic: n counted in bytes is whole blocks of
// size plus a remainder, otherwise n is already blocks.
func split(n, size int64, inBytes bool) (records, bytes int64) {
	if inBytes {
		return n / size, n % size
	}
	return n, 0
}

// SkipSplit returns skip= as dd uses it: (Skip/IBS, Skip%IBS) with
// iflag=skip_bytes, else (Skip, 0).
func (o *Operands) SkipSplit() (records, bytes int64) {
	return split(o.Skip, o.IBS, o.IFlag.SkipBytes)
}

// SeekSplit returns seek= as dd uses it: (Seek/OBS, Seek%OBS) with
// oflag=seek_bytes, else (Seek, 0).
func (o *Operands) SeekSplit() (records, bytes int64) {
	return split(o.Seek, o.OBS, o.OFlag.SeekBytes)
}

// CountSplit returns count= as dd uses it: (Count/IBS, Count%IBS) with
// iflag=count_bytes, else (Count, 0); records is -1 when there is no count.
func (o *Operands) CountSplit() (records, bytes int64) {
	if o.Count < 0 {
		return -1, 0
	}
	return split(o.Count, o.IBS, o.IFlag.CountBytes)
}

// WarnPartialRead reports whether dd would warn "partial read (N bytes);
// suggest iflag=fullblock" on a short read: with bs= (no reblocking) and
// without iflag=fullblock, when skipping whole blocks, counting blocks, or
// with iflag=direct or oflag=direct. dd warns at most once per run.
func (o *Operands) WarnPartialRead() bool {
	if o.BS == 0 || o.IFlag.Fullblock || o.Text.Active() {
		return false
	}
	skipRecords, _ := o.SkipSplit()
	countRecords, _ := o.CountSplit()
	return skipRecords != 0 || countRecords > 0 || o.IFlag.Direct || o.OFlag.Direct
}
