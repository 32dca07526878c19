package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is pvcat's parsed command line.
type config struct {
	size      int64 // -s; 0 unknown
	sizeSet   bool
	fields    progressFields
	numeric   bool    // -n
	quiet     bool    // -q
	force     bool    // -f
	interval  float64 // -i seconds
	name      string  // -N
	rateLimit int64   // -L bytes/s; 0 none
	bufSize   int64   // -B
	stopAt    bool    // -S
	wait      bool    // -W
	noSplice  bool    // -C
	json      bool    // --json
	jsonFD    int     // --json-fd; -1 stderr
	stall     float64 // --stall seconds; 0 off
	width     int     // -w columns; 0: the terminal's
	height    int     // -H rows; pv uses them only for -c, which pvcat lacks
	delay     float64 // -D seconds before the first display
	pidfile   string  // -P
}

type progressFields struct {
	bar, timer, eta, rate, average, bytes, fineta bool
}

func (f progressFields) any() bool {
	return f.bar || f.timer || f.eta || f.rate || f.average || f.bytes || f.fineta
}

// usageError is a bad command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

const usage = `usage: pvcat [-pterbaI] [-n] [-q] [-f] [-s SIZE|@FILE] [-S] [-i SEC] [-N NAME]
             [-L RATE] [-B BYTES] [-W] [-D SEC] [-C] [-w WIDTH] [-H HEIGHT]
             [-P FILE] [--json] [--json-fd N] [--stall SEC] [-V]
`

const help = usage + `
Copy stdin to stdout unchanged and show how it is going, like pv(1).

  -p, --progress       bar and percentage        -t, --timer    elapsed time
  -e, --eta            time left                 -r, --rate     current rate
  -a, --average-rate   average rate              -b, --bytes    bytes so far
  -I, --fineta         clock time it should end
                       (no field flag: -pterb, as pv)
  -n, --numeric        one number per interval, as pv -n: elapsed seconds with
                       -t, bytes with -b, else the percentage, folded as pv's
                       (p above 100 prints as 200-p)
  -q, --quiet          no display (SIGUSR1 still reports)
  -f, --force          draw even when stderr is not a terminal
  -s, --size SIZE      expected bytes (K M G T = 1024 powers, KB MB GB = 1000
                       powers, KiB MiB GiB, c w b; "1 M" too), or @FILE for
                       FILE's size; default: stdin's size when it is a file
                       or block device
  -S, --stop-at-size   stop after SIZE bytes
  -i, --interval SEC   seconds between updates (default 1, at least 0.1)
  -N, --name NAME      prefix the display with NAME
  -L, --rate-limit R   at most R bytes per second (suffixes as -s)
  -B, --buffer-size B  read/write buffer and splice chunk (default 1 MiB)
  -W, --wait           start the clock at the first byte
  -D, --delay-start S  display nothing until S seconds have passed
  -C, --no-splice      never use splice(2)
  -w, --width N        assume the terminal is N columns wide
  -H, --height N       assume the terminal is N rows high (no effect: pv
                       uses it only for -c)
  -P, --pidfile FILE   write pvcat's process ID to FILE, removed at exit
      --json           one JSON object per interval and one at the end, on
                       stderr instead of the display, or on --json-fd
      --json-fd N      write --json records to descriptor N
      --stall SEC      fail when no byte moved for SEC seconds
  -V, --version        print the version and exit

pv's -F -T -A -l -0 -c -E -R -d are refused (status 2), and so are FILE
operands: pvcat reads stdin only.

SIGUSR1 prints GNU dd's line "N bytes (X MB, Y MiB) copied, T s, R MB/s".

Exit status: 0 done, or the reader downstream went away (quietly, as pv);
1 read or write error, or a stall; 2 usage; 130 interrupted (SIGINT/SIGTERM).
`

// shortFlags maps pv's one-letter flags to their long names; those that
// take a value are in valueFlags.
var shortFlags = map[byte]string{
	'p': "progress", 't': "timer", 'e': "eta", 'r': "rate", 'a': "average-rate",
	'b': "bytes", 'I': "fineta", 'n': "numeric", 'q': "quiet", 'f': "force",
	'S': "stop-at-size", 'W': "wait", 'C': "no-splice", 'h': "help", 'V': "version",
	's': "size", 'i': "interval", 'N': "name", 'L': "rate-limit", 'B': "buffer-size",
	'D': "delay-start", 'w': "width", 'H': "height", 'P': "pidfile",
	// pv 1.6.20's flags pvcat refuses (see unsupportedFlags)
	'F': "format", 'T': "buffer-percent", 'A': "last-written", 'l': "line-mode",
	'0': "null", 'c': "cursor", 'E': "skip-errors", 'R': "remote", 'd': "watchfd",
}

var valueFlags = map[byte]bool{
	's': true, 'i': true, 'N': true, 'L': true, 'B': true, 'D': true, 'w': true,
	'H': true, 'P': true, 'F': true, 'A': true, 'R': true, 'd': true,
}

// unsupportedFlags are pv 1.6.20's options pvcat does not implement, by
// short letter. pvcat names them in a one-line usage error rather than
// flag's "flag provided but not defined", or, worse, a silent difference.
// -0 is here with -l because in pv it turns line mode on by itself.
var unsupportedFlags = []byte{'F', 'T', 'A', 'l', '0', 'c', 'E', 'R', 'd'}

// refused is a flag.Value for an unsupported flag: it notes that the flag
// was given, for parseArgs to refuse it after parsing.
type refused struct {
	short  byte
	seen   *[]byte
	isBool bool
}

func (r refused) String() string   { return "" }
func (r refused) Set(string) error { *r.seen = append(*r.seen, r.short); return nil }
func (r refused) IsBoolFlag() bool { return r.isBool }

// expand rewrites getopt-style short options, which pv users type
// ("-pterb", "-s700G", "-nL1M"), into one flag per argument for package
// flag, which knows no clusters. Long flags and anything after "--" pass
// unchanged; an unknown letter becomes its own flag so flag reports it.
func expand(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' || a[1] == '-' {
			out = append(out, a)
			continue
		}
		if long, ok := shortFlags[a[1]]; ok && len(a) == 2 {
			out = append(out, "--"+long)
			if valueFlags[a[1]] && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			continue
		}
		if _, ok := shortFlags[a[1]]; !ok {
			out = append(out, a) // -json, -stall=3: Go's single-dash long flags
			continue
		}
		for j := 1; j < len(a); j++ {
			long, ok := shortFlags[a[j]]
			if !ok {
				out = append(out, "-"+a[j:j+1])
				continue
			}
			out = append(out, "--"+long)
			if valueFlags[a[j]] {
				if j+1 < len(a) {
					out = append(out, a[j+1:])
				} else if i+1 < len(args) {
					out = append(out, args[i+1])
					i++
				}
				break
			}
		}
	}
	return out
}

// errVersion is parseArgs's answer to -V/--version: print the version.
var errVersion = errors.New("version requested")

// minInterval is the shortest -i: pv 1.6.20 draws at most about every 0.1 s
// whatever -i says (-i 0 included), and later pvs clamp -i to 0.1.
const minInterval = 0.1

// parseArgs parses pvcat's command line. Errors are usageError, or
// flag.ErrHelp for -h, or errVersion for -V.
func parseArgs(args []string) (*config, error) {
	c := &config{interval: 1, jsonFD: -1}
	fs := flag.NewFlagSet("pvcat", flag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.Usage = func() {}
	var size, rateLimit, bufSize, width, height string
	var seen []byte
	for _, short := range unsupportedFlags {
		fs.Var(refused{short, &seen, !valueFlags[short]}, shortFlags[short], "")
	}
	fs.Func("size", "", func(s string) error { size = s; c.sizeSet = true; return nil })
	fs.BoolVar(&c.fields.bar, "progress", false, "")
	fs.BoolVar(&c.fields.timer, "timer", false, "")
	fs.BoolVar(&c.fields.eta, "eta", false, "")
	fs.BoolVar(&c.fields.rate, "rate", false, "")
	fs.BoolVar(&c.fields.average, "average-rate", false, "")
	fs.BoolVar(&c.fields.bytes, "bytes", false, "")
	fs.BoolVar(&c.fields.fineta, "fineta", false, "")
	fs.BoolVar(&c.numeric, "numeric", false, "")
	fs.BoolVar(&c.quiet, "quiet", false, "")
	fs.BoolVar(&c.force, "force", false, "")
	fs.Func("interval", "", func(s string) (err error) { c.interval, err = parseSeconds(s); return err })
	fs.Func("delay-start", "", func(s string) (err error) { c.delay, err = parseSeconds(s); return err })
	fs.StringVar(&width, "width", "", "")
	fs.StringVar(&height, "height", "", "")
	fs.Func("pidfile", "", func(s string) error {
		if s == "" {
			return errors.New("empty file name")
		}
		c.pidfile = s
		return nil
	})
	fs.StringVar(&c.name, "name", "", "")
	fs.StringVar(&rateLimit, "rate-limit", "", "")
	fs.StringVar(&bufSize, "buffer-size", "", "")
	fs.BoolVar(&c.stopAt, "stop-at-size", false, "")
	fs.BoolVar(&c.wait, "wait", false, "")
	fs.BoolVar(&c.noSplice, "no-splice", false, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.IntVar(&c.jsonFD, "json-fd", -1, "")
	fs.Float64Var(&c.stall, "stall", 0, "")
	var helpFlag, versionFlag bool
	fs.BoolVar(&helpFlag, "help", false, "")
	fs.BoolVar(&versionFlag, "version", false, "")
	expanded := expand(args)
	if err := fs.Parse(expanded); err != nil {
		// An unsupported flag without its value ("pvcat -F") is refused by
		// name too, not with flag's "flag needs an argument: -format".
		for _, a := range expanded {
			if a == "--" {
				break
			}
			if !strings.HasPrefix(a, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f := fs.Lookup(name); f != nil {
				if r, ok := f.Value.(refused); ok {
					return nil, usagef("-%c (--%s) is not supported by pvcat", r.short, name)
				}
			}
		}
		return nil, usageError{err}
	}
	if len(seen) > 0 {
		return nil, usagef("-%c (--%s) is not supported by pvcat", seen[0], shortFlags[seen[0]])
	}
	if helpFlag {
		return nil, flag.ErrHelp
	}
	if versionFlag {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected operand %q: pvcat reads stdin only (pvcat < FILE)", fs.Arg(0))
	}
	if c.sizeSet {
		n, err := parseSizeArg(size)
		if err != nil {
			return nil, usagef("-s: %v", err)
		}
		c.size = n
	}
	if rateLimit != "" {
		n, err := parseSize(rateLimit)
		if err != nil || n <= 0 {
			return nil, usagef("-L: invalid rate %q", rateLimit)
		}
		c.rateLimit = n
	}
	if bufSize != "" {
		n, err := parseSize(bufSize)
		if err != nil || n <= 0 || n > 1<<30 {
			return nil, usagef("-B: invalid buffer size %q (1 byte to 1 GiB)", bufSize)
		}
		c.bufSize = n
	}
	if !(c.interval >= 0) || c.interval > 1e6 {
		return nil, usagef("-i: invalid interval %v (want seconds >= 0)", c.interval)
	}
	c.interval = max(c.interval, minInterval)
	if !(c.delay >= 0) || c.delay > 1e9 {
		return nil, usagef("-D: invalid delay %v (want seconds >= 0)", c.delay)
	}
	for _, d := range []struct {
		flag, what, val string
		to              *int
	}{{"-w", "width", width, &c.width}, {"-H", "height", height, &c.height}} {
		if d.val == "" {
			continue
		}
		n, err := parseSize(d.val)
		if err != nil {
			return nil, usagef("%s: invalid %s %q", d.flag, d.what, d.val)
		}
		*d.to = int(min(n, maxTermSize)) // pv's bound; 0 means the terminal's
	}
	if c.stall < 0 || math.IsNaN(c.stall) || c.stall > 1e9 {
		return nil, usagef("--stall: invalid seconds %v", c.stall)
	}
	if c.jsonFD >= 0 {
		c.json = true
	} else if c.jsonFD != -1 {
		return nil, usagef("--json-fd: invalid descriptor %d", c.jsonFD)
	}
	if !c.fields.any() && !c.numeric {
		// pv's default; pv -n alone prints percentages only.
		c.fields = progressFields{bar: true, timer: true, eta: true, rate: true, bytes: true}
	}
	return c, nil
}

// maxTermSize is the largest -w and -H, as pv bounds them.
const maxTermSize = 999999

func (c *config) intervalDuration() time.Duration {
	return time.Duration(c.interval * float64(time.Second))
}

func (c *config) delayDuration() time.Duration {
	return time.Duration(c.delay * float64(time.Second))
}

// parseSeconds parses -i and -D as pv does, and a little more: leading
// blanks, a decimal comma (pv takes "0,5" as 0.5), and Go's float syntax
// (".5", "1e-1"). The error reads "parse error", as package flag's own.
func parseSeconds(s string) (float64, error) {
	s = strings.TrimLeft(s, " \t")
	if strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("parse error")
	}
	return f, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// parseSizeArg parses -s: a size, or @FILE for the size of FILE (a regular
// file or a block device).
func parseSizeArg(s string) (int64, error) {
	if p, ok := strings.CutPrefix(s, "@"); ok {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n, ok, err := streamSize(f)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("%s: neither a regular file nor a block device", p)
		}
		return n, nil
	}
	return parseSize(s)
}

// multipliers are GNU's size suffixes (dd, head -c) plus pv's lower-case
// k, m, g, t; all are 1024 powers except the xB ones.
var multipliers = map[string]float64{
	"": 1, "c": 1, "w": 2, "b": 512,
	"k": 1 << 10, "K": 1 << 10, "KiB": 1 << 10, "kB": 1e3, "KB": 1e3,
	"m": 1 << 20, "M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
	"g": 1 << 30, "G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
	"t": 1 << 40, "T": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
	"P": 1 << 50, "PiB": 1 << 50, "PB": 1e15,
	"E": 1 << 60, "EiB": 1 << 60, "EB": 1e18,
}

var errSize = errors.New("invalid size")

// parseSize parses a byte count such as 700G, 1.5GiB, 4096, 10MB. Blanks
// may lead and may stand between the number and a unit ("1 M"), as pv
// allows; a blank with no unit after it is an error, as in pv.
func parseSize(s string) (int64, error) {
	num := strings.TrimLeft(s, " \t")
	i := 0
	for i < len(num) && (num[i] >= '0' && num[i] <= '9' || num[i] == '.') {
		i++
	}
	unit := strings.TrimLeft(num[i:], " \t")
	num = num[:i]
	mult, ok := multipliers[unit]
	if i == 0 || !ok || unit == "" && i < len(strings.TrimLeft(s, " \t")) {
		return 0, fmt.Errorf("%w %q", errSize, s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || mult != 0 && n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("%w %q", errSize, s)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%w %q", errSize, s)
	}
	return int64(f * mult), nil
}
