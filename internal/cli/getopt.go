package cli

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Arg says whether an option takes a value.
type Arg int

const (
	// NoArg: a flag, "-q" or "--quiet"; "--quiet=x" is an error.
	NoArg Arg = iota
	// Required: the rest of the argument ("-s700G", "--size=700G") or
	// the next one ("-s 700G", "--size 700G"), even if it starts with
	// "-"; missing at the end of the line is an error.
	Required
	// Optional: only an attached value ("-F%b", "--format=%b"), as
	// getopt's "::"; Set gets "" when there is none.
	Optional
)

// Option is one option of a Parser. Short is its letter (0: none), Long
// its name without dashes ("": none). Set is called for each occurrence,
// in command-line order, with the value ("" for a NoArg option). An error
// from Set becomes "invalid argument 'VALUE' for '--opt': ERR", wrapping
// ERR (as the option was typed: "-L", "--rate-limit"), unless it
// is a usage error already (errors.Is ErrUsage), ErrHelp or ErrVersion,
// which pass unchanged.
type Option struct {
	Short byte
	Long  string
	Arg   Arg
	Set   func(value string) error
}

// Bool is a NoArg option that sets *p.
func Bool(short byte, long string, p *bool) Option {
	return Option{short, long, NoArg, func(string) error { *p = true; return nil }}
}

// String is an option whose value is stored in *p.
func String(short byte, long string, p *string) Option {
	return Option{short, long, Required, func(v string) error { *p = v; return nil }}
}

// Func is an option whose value set parses.
func Func(short byte, long string, set func(string) error) Option {
	return Option{short, long, Required, set}
}

// Duration is an option whose value ParseDuration parses into *p.
func Duration(short byte, long string, p *time.Duration) Option {
	return Func(short, long, func(v string) (err error) { *p, err = ParseDuration(v); return err })
}

// Float is an option whose value is a decimal number, stored in *p.
func Float(short byte, long string, p *float64) Option {
	return Func(short, long, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("not a number")
		}
		*p = f
		return nil
	})
}

// Parser parses a command line as getopt_long(3) does: bundled short
// options ("-qz lz4", "-qzlz4", "-nL1M"), "--long=value" and "--long
// value", "--" to end the options, and "-" as an operand. A single dash
// before a long name ("-json", "-size=8M") is taken as two when the first
// letter is no short option, as Go's flag package allowed. Long names are
// matched exactly, not by prefix.
//
// -h/--help and -V/--version are built in (Parse returns ErrHelp or
// ErrVersion at once) unless Options define them.
type Parser struct {
	Options []Option
	// InOrder stops at the first operand, as POSIX getopt and Go's flag
	// do, so that what follows is left alone ("snapctl run ORIGIN --
	// CMD"). Otherwise options and operands mix, as GNU getopt permutes.
	InOrder bool
}

var builtin = []Option{
	{'h', "help", NoArg, func(string) error { return ErrHelp }},
	{'V', "version", NoArg, func(string) error { return ErrVersion }},
}

func (p *Parser) short(c byte) *Option {
	for _, opts := range [][]Option{p.Options, builtin} {
		for i := range opts {
			if opts[i].Short == c && c != 0 {
				return &opts[i]
			}
		}
	}
	return nil
}

func (p *Parser) long(name string) *Option {
	for _, opts := range [][]Option{p.Options, builtin} {
		for i := range opts {
			if opts[i].Long == name && name != "" {
				return &opts[i]
			}
		}
	}
	return nil
}

// Parse parses args (without the program name) and returns the operands.
// Errors are *UsageError, ErrHelp or ErrVersion, or what a Set returned.
func (p *Parser) Parse(args []string) ([]string, error) {
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(operands, args[i+1:]...), nil
		case len(a) < 2 || a[0] != '-':
			if p.InOrder {
				return append(operands, args[i:]...), nil
			}
			operands = append(operands, a)
			continue
		}
		// "--name[=value]", or "-name[=value]" when a's first letter
		// is no short option.
		dashes := "--"
		if a[1] != '-' {
			dashes = "-"
		}
		name, val, attached := strings.Cut(a[len(dashes):], "=")
		if dashes == "-" && (p.short(a[1]) != nil || len(name) < 2) {
			if err := p.cluster(args, &i); err != nil {
				return nil, err
			}
			continue
		}
		shown := dashes + name
		o := p.long(name)
		if o == nil {
			return nil, Usagef("unknown option '%s'", shown)
		}
		switch {
		case o.Arg == NoArg && attached:
			return nil, Usagef("option '%s' doesn't allow an argument", shown)
		case o.Arg == Required && !attached:
			if i+1 == len(args) {
				return nil, Usagef("option '%s' requires an argument", shown)
			}
			i++
			val = args[i]
		}
		if err := set(o, shown, val); err != nil {
			return nil, err
		}
	}
	return operands, nil
}

// cluster parses args[*i], a cluster of short options ("-qzlz4"),
// advancing *i past a value taken from the next argument.
func (p *Parser) cluster(args []string, i *int) error {
	a := args[*i]
	for j := 1; j < len(a); j++ {
		shown := "-" + a[j:j+1]
		o := p.short(a[j])
		if o == nil {
			return Usagef("unknown option '%s'", shown)
		}
		val := ""
		switch {
		case o.Arg == NoArg:
		case j+1 < len(a):
			val, j = a[j+1:], len(a)
		case o.Arg == Required:
			if *i+1 == len(args) {
				return Usagef("option '%s' requires an argument", shown)
			}
			*i++
			val = args[*i]
		}
		if err := set(o, shown, val); err != nil {
			return err
		}
	}
	return nil
}

func set(o *Option, shown, val string) error {
	err := o.Set(val)
	if err == nil || errors.Is(err, ErrUsage) || errors.Is(err, ErrHelp) || errors.Is(err, ErrVersion) {
		return err
	}
	if o.Arg == NoArg {
		return Usagef("option '%s': %w", shown, err)
	}
	return Usagef("invalid argument '%s' for '%s': %w", val, shown, err)
}
