package ddtool

import (
	"strings"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddargs"
)

// OperandsHelp lists the dd operands both tools accept, for their --help.
const OperandsHelp = `dd operands (GNU semantics, numbers take c w b kB K KiB MB M MiB ... and NxM):
  if= of= bs= ibs= obs= count= skip=/iseek= seek=/oseek= status=none|noxfer|progress
  conv=notrunc,sync,noerror,fsync,fdatasync,sparse,excl,nocreat  cbs=
  conv=ascii,ebcdic,ibm,block,unblock,lcase,ucase,swab (record by record, as dd)
  iflag=direct,fullblock,count_bytes,skip_bytes,nocache,dsync,sync
  oflag=direct,dsync,sync,seek_bytes,append,nocache
`

// Parser parses a dd tool's command line with cli.Parser: getopt's
// options (bundled short options, --opt=value and --opt value, "--" ends
// them, -h/--help and -V/--version) mixed with dd's key=value operands
// and one bare path.
type Parser struct {
	// Positional is the operand a bare path argument sets: "if" for
	// blkcat SRC, "of" for blkwrite DST.
	Positional string
	// Options are the tool's own options, next to the shared --bs,
	// --offset, --length and -q/--quiet.
	Options []cli.Option
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
// or output, the shared options --bs N, --offset N, --length N, -q, and
// the tool's own (p.Options). Errors are *cli.UsageError, cli.ErrHelp,
// cli.ErrVersion, or ddargs' errors in dd's wording.
func (p Parser) Parse(args []string) (*Args, error) {
	res := &Args{}
	var conv []string // the shared options turned into operands, applied last
	opts := append([]cli.Option{
		{Short: 'q', Long: "quiet", Arg: cli.NoArg, Set: func(string) error { conv = append(conv, "status=none"); return nil }},
		cli.Func(0, "bs", func(v string) error { conv = append(conv, "bs="+v); return nil }),
		cli.Func(0, "offset", func(v string) error {
			if p.Positional == "if" {
				conv = append(conv, "skip="+v, "iflag=skip_bytes")
			} else {
				conv = append(conv, "seek="+v, "oflag=seek_bytes")
			}
			return nil
		}),
		cli.Func(0, "length", func(v string) error { conv = append(conv, "count="+v, "iflag=count_bytes"); return nil }),
	}, p.Options...)
	words, err := (&cli.Parser{Options: opts}).Parse(args)
	if err != nil {
		return nil, err
	}
	var operands []string
	positional, havePositional := "", false
	what := map[string]string{"if": "input", "of": "output"}[p.Positional]
	for _, a := range words {
		if strings.Contains(a, "=") {
			operands = append(operands, a)
			continue
		}
		if havePositional {
			return nil, cli.Usagef("unexpected argument '%s': only one %s may be given ('%s' was the first)", a, what, positional)
		}
		positional, havePositional = a, true
	}
	if havePositional {
		for _, o := range operands {
			if strings.HasPrefix(o, p.Positional+"=") {
				return nil, cli.Usagef("'%s' and %s= both name the %s; give one", positional, p.Positional, what)
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
		if strings.HasPrefix(err.Error(), "unrecognized operand ") {
			// dd follows this one error, and no other of its operand
			// errors, with its Try line.
			return nil, &cli.UsageError{Err: err}
		}
		return nil, err
	}
	res.Ops = ops
	return res, nil
}
