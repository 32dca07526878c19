package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
)

// config is pvcat's parsed command line.
type config struct {
	size      int64 // -s; 0 unknown
	sizeSet   bool
	fields    progressFields
	numeric   bool          // -n
	quiet     bool          // -q
	force     bool          // -f
	interval  time.Duration // -i
	name      string        // -N
	rateLimit int64         // -L bytes/s; 0 none
	bufSize   int64         // -B
	stopAt    bool          // -S
	wait      bool          // -W
	noSplice  bool          // -C
	json      bool          // --json
	jsonFD    int           // --json-fd; -1 stderr
	stall     time.Duration // --stall; 0 off
	width     int           // -w columns; 0: the terminal's
	height    int           // -H rows; pv uses them only for -c, which pvcat lacks
	delay     time.Duration // -D before the first display
	pidfile   string        // -P
	discard   bool          // -X: read, count, write nothing
	wire      bool          // --wire: count framed streams' wire bytes
	files     []string      // FILE operands, "-" for stdin; none: stdin
}

type progressFields struct {
	bar, timer, eta, rate, average, bytes, fineta bool
}

func (f progressFields) any() bool {
	return f.bar || f.timer || f.eta || f.rate || f.average || f.bytes || f.fineta
}

const usage = `usage: pvcat [-pterbaI] [-n] [-q] [-f] [-s SIZE|@FILE] [-S] [-i SEC] [-N NAME]
             [-L RATE] [-B BYTES] [-W] [-D SEC] [-C] [-X] [-w WIDTH]
             [-H HEIGHT] [-P FILE] [--json] [--json-fd N] [--stall SEC]
             [--wire] [-V] [FILE...]
`

var help = usage + `
Copy each FILE (stdin for - or none) to stdout, in order and unchanged, and
show how it is going, like pv(1). A FILE that cannot be opened is reported
and skipped, as pv does (status 2, 10 if none could); one that is the output
file stops the copy (status 4).

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
                       FILE's size; default: the FILEs' sizes (or stdin's)
                       when they are regular files or block devices
  -S, --stop-at-size   stop after SIZE bytes (counted on the wire)
  -i, --interval SEC   seconds between updates (default 1, at least 0.1)
  -N, --name NAME      prefix the display with NAME
  -L, --rate-limit R   at most R bytes per second (suffixes as -s)
  -B, --buffer-size B  read/write buffer and splice chunk (0 or default 1 MiB)
  -W, --wait           start the clock at the first byte
  -D, --delay-start S  display nothing until S seconds have passed
  -C, --no-splice      never use splice(2)
  -X, --discard        read and count the input, write nothing (as pv 1.7)
  -w, --width N        assume the terminal is N columns wide
  -H, --height N       assume the terminal is N rows high (no effect: pv
                       uses it only for -c)
  -P, --pidfile FILE   write pvcat's process ID to FILE, removed at exit
      --json           one JSON object per interval and one at the end, on
                       stderr instead of the display, or on --json-fd; each
                       has "ts", the UTC time (RFC 3339). With JSON on
                       stderr, pvcat's errors there are JSON lines too,
                       {"ts":...,"error":"..."}, and SIGUSR1 writes a record
      --json-fd N      write --json records to descriptor N; errors stay
                       plain text on stderr
      --stall SEC      fail when no byte moved for SEC seconds
      --wire           count the bytes on the wire even in a framed stream
                       (blkcat --frame/-z), where pvcat counts source bytes
                       (and takes the size from the stream's header)
  -V, --version        print the version and exit

SEC is seconds (2, 0.5, 0,5) or a duration (250ms, 5m, 1h30m, 1d). Short
options combine as with getopt: -pterb, -s700G, -nL1M.

When its input is a framed stream (blkcat --frame or -z), pvcat counts the
source bytes the records cover, not the compressed bytes on the wire, and
without -s takes the size the stream's header declares; -L still limits the
wire. --wire or -S count the wire instead.

pv's -F -T -A -l -0 -c -E -R -d are refused (status 2).

SIGUSR1 prints GNU dd's line "N bytes (X MB, Y MiB) copied, T s, R/s".

` + cli.ExitHelp("pvcat")

// unsupported are pv 1.6.20's options pvcat does not implement. pvcat
// names them in a one-line usage error rather than an unknown option, or,
// worse, a silent difference. -0 is here with -l because in pv it turns
// line mode on by itself.
var unsupported = []struct {
	short byte
	long  string
}{
	{'F', "format"}, {'T', "buffer-percent"}, {'A', "last-written"}, {'l', "line-mode"},
	{'0', "null"}, {'c', "cursor"}, {'E', "skip-errors"}, {'R', "remote"}, {'d', "watchfd"},
}

// minInterval is the shortest -i: pv 1.6.20 draws at most about every 0.1 s
// whatever -i says (-i 0 included), and later pvs clamp -i to 0.1.
const minInterval = 100 * time.Millisecond

// parseArgs parses pvcat's command line. Errors are usage errors
// (cli.ErrUsage), or cli.ErrHelp for -h, or cli.ErrVersion for -V.
func parseArgs(args []string) (*config, error) {
	c := &config{interval: time.Second, jsonFD: -1}
	seconds := func(p *time.Duration, most time.Duration) func(string) error {
		return func(s string) error {
			d, err := parseSeconds(s)
			if err == nil && d > most {
				err = fmt.Errorf("want at most %v", most)
			}
			*p = d
			return err
		}
	}
	size := func(p *int64, most int64, want string) func(string) error {
		return func(s string) error {
			n, err := parseSize(s)
			if err == nil && (n <= 0 || n > most) {
				err = errors.New(want)
			}
			*p = n
			return err
		}
	}
	term := func(p *int) func(string) error {
		return func(s string) error {
			n, err := parseSize(s)
			*p = int(min(n, maxTermSize)) // pv's bound; 0 means the terminal's
			return err
		}
	}
	opts := []cli.Option{
		cli.Bool('p', "progress", &c.fields.bar),
		cli.Bool('t', "timer", &c.fields.timer),
		cli.Bool('e', "eta", &c.fields.eta),
		cli.Bool('r', "rate", &c.fields.rate),
		cli.Bool('a', "average-rate", &c.fields.average),
		cli.Bool('b', "bytes", &c.fields.bytes),
		cli.Bool('I', "fineta", &c.fields.fineta),
		cli.Bool('n', "numeric", &c.numeric),
		cli.Bool('q', "quiet", &c.quiet),
		cli.Bool('f', "force", &c.force),
		cli.Bool('S', "stop-at-size", &c.stopAt),
		cli.Bool('W', "wait", &c.wait),
		cli.Bool('C', "no-splice", &c.noSplice),
		cli.Bool('X', "discard", &c.discard),
		cli.Bool(0, "wire", &c.wire),
		cli.Bool(0, "json", &c.json),
		cli.Func('s', "size", func(s string) (err error) { c.size, err = parseSizeArg(s); c.sizeSet = true; return err }),
		cli.Func('i', "interval", seconds(&c.interval, 1e6*time.Second)),
		cli.Func('D', "delay-start", seconds(&c.delay, 1e9*time.Second)),
		cli.Func(0, "stall", seconds(&c.stall, 1e9*time.Second)),
		cli.String('N', "name", &c.name),
		cli.Func('L', "rate-limit", size(&c.rateLimit, math.MaxInt64, "want a rate above 0")),
		cli.Func('B', "buffer-size", func(s string) (err error) {
			// 0 is the default, as in pv.
			c.bufSize, err = parseSize(s)
			if err == nil && c.bufSize > 1<<30 {
				err = errors.New("want at most 1 GiB (0: the default)")
			}
			return err
		}),
		cli.Func('w', "width", term(&c.width)),
		cli.Func('H', "height", term(&c.height)),
		cli.Func('P', "pidfile", func(s string) error {
			if s == "" {
				return errors.New("empty file name")
			}
			c.pidfile = s
			return nil
		}),
		cli.Func(0, "json-fd", func(s string) (err error) {
			c.jsonFD, err = strconv.Atoi(s)
			if err != nil || c.jsonFD < 0 {
				return errors.New("want a descriptor number")
			}
			c.json = true
			return nil
		}),
	}
	for _, u := range unsupported {
		opts = append(opts, cli.Option{Short: u.short, Long: u.long, Arg: cli.Optional, Set: func(string) error {
			return cli.Usagef("-%c (--%s) is not supported by pvcat", u.short, u.long)
		}})
	}
	p := cli.Parser{Options: opts}
	operands, err := p.Parse(args)
	if err != nil {
		return nil, err
	}
	c.files = operands
	c.interval = max(c.interval, minInterval)
	if !c.fields.any() && !c.numeric {
		// pv's default; pv -n alone prints percentages only.
		c.fields = progressFields{bar: true, timer: true, eta: true, rate: true, bytes: true}
	}
	return c, nil
}

// maxTermSize is the largest -w and -H, as pv bounds them.
const maxTermSize = 999999

// parseSeconds parses -i, -D and --stall: cli.ParseDuration's seconds
// and durations, and, as pv, leading blanks and a decimal comma ("0,5").
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimLeft(s, " \t")
	if strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	return cli.ParseDuration(s)
}

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

// errSize is parseSize's reason for refusing a size.
var errSize = errors.New("want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b")

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
		return 0, errSize
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || mult != 0 && n > math.MaxInt64/int64(mult) {
			return 0, errSize
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= math.MaxInt64 {
		return 0, errSize
	}
	return int64(f * mult), nil
}
