package ddtool

import (
	"fmt"
	"strings"

	"github.com/blkpipe/blkpipe/internal/ddargs"
)

// noValue are the flags that take no value: "--frame=0" is refused, as
// getopt_long refuses it, rather than read as --frame. The list is the
// same for both tools, so each refuses the other's "--raw=1" alike.
var noValue = map[string]bool{
	"h": true, "help": true, "version": true, "q": true, "quiet": true, "frame": true,
	"resume-point": true, "raw": true, "framed": true, "assume-zeroed": true, "no-verify": true,
	"progress": true, "f": true, "force": true, "json": true,
}

// OperandsHelp lists the dd operands both tools accept, for their --help.
const OperandsHelp = `dd operands (GNU semantics, numbers take c w b kB K KiB MB M MiB ... and NxM):
  if= of= bs= ibs= obs= count= skip=/iseek= seek=/oseek= status=none|noxfer|progress
  conv=notrunc,sync,noerror,fsync,fdatasync,sparse,excl,nocreat  cbs=
  conv=ascii,ebcdic,ibm,block,unblock,lcase,ucase,swab (record by record, as dd)
  iflag=direct,fullblock,count_bytes,skip_bytes,nocache,dsync,sync
  oflag=direct,dsync,sync,seek_bytes,append,nocache
`

// Flag is a tool's own option on its command line.
type Flag struct {
	Name   string // without dashes, as given: "z", "frame"
	Val    string // the value after "=", if HasVal
	HasVal bool
	// Value returns the option's value: after "=", or the next argument.
	Value func() (string, error)
}

// Parser parses a dd tool's command line.
type Parser struct {
	// Positional is the operand a bare path argument sets: "if" for
	// blkcat SRC, "of" for blkwrite DST.
	Positional string
	// Flags handle the tool's own options, by name without dashes ("z",
	// "frame"); any other is unknown.
	Flags map[string]func(f Flag) error
}

// Bool is a Flags handler that sets *b.
func Bool(b *bool) func(Flag) error {
	return func(Flag) error { *b = true; return nil }
}

// Args is a parsed command line.
type Args struct {
	Ops *ddargs.Operands
	// BareTarget: blkwrite DST rather than of=DST, blkpipe's own form,
	// where an empty input is refused instead of copied as dd copies it.
	BareTarget bool
}

// Parse turns a command line into dd operands. It accepts dd's key=value
// operands, one bare path (the Positional operand), "-" for standard input
// or output, and conventional flags: --bs N, --offset N, --length N, -q,
// --help, --version, and the tool's own (p.Flags). "--" ends the flags. It
// returns ErrHelp or ErrVersion for --help and --version.
func (p Parser) Parse(args []string) (*Args, error) {
	res := &Args{}
	var operands []string
	var conv []string // conventional flags turned into operands, applied last
	positional, havePositional := "", false
	flagsDone := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !flagsDone && a == "--" {
			flagsDone = true
			continue
		}
		if !flagsDone && strings.HasPrefix(a, "-") && a != "-" {
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			needVal := func() (string, error) {
				if hasVal {
					return val, nil
				}
				if i+1 >= len(args) {
					return "", Usage(fmt.Sprintf("option '%s' needs a value", a))
				}
				i++
				return args[i], nil
			}
			if hasVal && noValue[name] {
				return nil, Usage(fmt.Sprintf("option '%s' doesn't allow an argument", strings.SplitN(a, "=", 2)[0]))
			}
			switch name {
			case "h", "help":
				return nil, ErrHelp
			case "version":
				return nil, ErrVersion
			case "q", "quiet":
				conv = append(conv, "status=none")
			case "bs":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				conv = append(conv, "bs="+v)
			case "offset":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				if p.Positional == "if" {
					conv = append(conv, "skip="+v, "iflag=skip_bytes")
				} else {
					conv = append(conv, "seek="+v, "oflag=seek_bytes")
				}
			case "length":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				conv = append(conv, "count="+v, "iflag=count_bytes")
			default:
				handle, ok := p.Flags[name]
				if !ok {
					return nil, Usage(fmt.Sprintf("unknown option '%s' (see --help)", a))
				}
				if err := handle(Flag{Name: name, Val: val, HasVal: hasVal, Value: needVal}); err != nil {
					return nil, err
				}
			}
			continue
		}
		if strings.Contains(a, "=") {
			operands = append(operands, a)
			continue
		}
		if havePositional {
			return nil, Usage(fmt.Sprintf("unexpected argument '%s': only one %s may be given ('%s' was the first)", a, map[string]string{"if": "input", "of": "output"}[p.Positional], positional))
		}
		positional, havePositional = a, true
	}
	if havePositional {
		for _, o := range operands {
			if strings.HasPrefix(o, p.Positional+"=") {
				return nil, Usage(fmt.Sprintf("'%s' and %s= both name the %s; give one", positional, p.Positional, map[string]string{"if": "input", "of": "output"}[p.Positional]))
			}
		}
		if positional != "-" {
			// Through ddargs as if= or of=, so the path gets every check
			// dd makes on the operand (an empty name, seek= too large to
			// truncate to).
			operands = append([]string{p.Positional + "=" + positional}, operands...)
			res.BareTarget = p.Positional == "of"
		}
	}
	ops, err := ddargs.Parse(append(operands, conv...))
	if err != nil {
		return nil, err
	}
	res.Ops = ops
	return res, nil
}
