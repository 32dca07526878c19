package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"4096", 4096}, {"700G", 700 << 30}, {"700g", 700 << 30},
		{"1.5GiB", 3 << 29}, {"10MB", 10e6}, {"1k", 1024}, {"1kB", 1000},
		{"2w", 4}, {"3b", 1536}, {"1T", 1 << 40}, {"7c", 7},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	// Blanks before the number and before the unit, as pv takes them.
	for in, want := range map[string]int64{"1 M": 1 << 20, " 1M": 1 << 20, "1 \tk": 1 << 10, "\t2 GiB": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "12Q", "-1", "1.2.3M", "9E", "99999999999999999999", "1 ", " ", "1 M x", "1 - M"} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, n)
		}
	}
}

func TestParseArgs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, make([]byte, 12345), 0o600); err != nil {
		t.Fatal(err)
	}
	def := progressFields{bar: true, timer: true, eta: true, rate: true, bytes: true}
	tests := []struct {
		args string
		want config
	}{
		{"", config{fields: def, interval: time.Second, jsonFD: -1}},
		{"-s 700G", config{size: 700 << 30, sizeSet: true, fields: def, interval: time.Second, jsonFD: -1}},
		{"-s @" + img, config{size: 12345, sizeSet: true, fields: def, interval: time.Second, jsonFD: -1}},
		{"-n", config{numeric: true, interval: time.Second, jsonFD: -1}},
		{"-ntb -i 0.5", config{numeric: true, fields: progressFields{timer: true, bytes: true}, interval: 500 * time.Millisecond, jsonFD: -1}},
		{"-aI -qfSWC -N x -L 1M -B 64K", config{fields: progressFields{average: true, fineta: true},
			quiet: true, force: true, stopAt: true, wait: true, noSplice: true, name: "x",
			rateLimit: 1 << 20, bufSize: 64 << 10, interval: time.Second, jsonFD: -1}},
		{"--json-fd 3 --stall 2.5", config{fields: def, interval: time.Second, json: true, jsonFD: 3, stall: 2500 * time.Millisecond}},
		{"-w 120 -H 40 -D 2.5 -P /run/pvcat.pid", config{fields: def, interval: time.Second, jsonFD: -1,
			width: 120, height: 40, delay: 2500 * time.Millisecond, pidfile: "/run/pvcat.pid"}},
		{"-w 0 -w 1k -H 9999999", config{fields: def, interval: time.Second, jsonFD: -1, width: 1024, height: 999999}},
		// pv 1.6.20 takes -i 0 and draws about every 0.1 s; pvcat's
		// shortest interval is 0.1 s. pv reads a decimal comma too.
		{"-i 0", config{fields: def, interval: 100 * time.Millisecond, jsonFD: -1}},
		{"-i 0.02", config{fields: def, interval: 100 * time.Millisecond, jsonFD: -1}},
		{"-i 0,5 -D 1,5", config{fields: def, interval: 500 * time.Millisecond, delay: 1500 * time.Millisecond, jsonFD: -1}},
		// Durations everywhere a time is asked for.
		{"--stall 5m -i 250ms -D 1d", config{fields: def, interval: 250 * time.Millisecond, delay: 24 * time.Hour, stall: 5 * time.Minute, jsonFD: -1}},
		// getopt's bundles, as pv users type them.
		{"-pterb", config{fields: def, interval: time.Second, jsonFD: -1}},
		{"-nL1M -s700G", config{numeric: true, rateLimit: 1 << 20, size: 700 << 30, sizeSet: true, interval: time.Second, jsonFD: -1}},
		{"-fN name --size=3", config{force: true, name: "name", size: 3, sizeSet: true, fields: def, interval: time.Second, jsonFD: -1}},
		{"-json -json-fd=3", config{fields: def, interval: time.Second, json: true, jsonFD: 3}},
		// FILE operands, in order, "-" for stdin; pv's -B 0 (the default),
		// -X and --wire.
		{"a - -q b -- -c", config{quiet: true, fields: def, interval: time.Second, jsonFD: -1, files: []string{"a", "-", "b", "-c"}}},
		{"-B 0 -X --wire", config{discard: true, wire: true, fields: def, interval: time.Second, jsonFD: -1}},
		{"--discard -B 1G", config{discard: true, bufSize: 1 << 30, fields: def, interval: time.Second, jsonFD: -1}},
	}
	for _, tt := range tests {
		got, err := parseArgs(strings.Fields(tt.args))
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("parseArgs(%q) =\n%+v\nwant\n%+v", tt.args, *got, tt.want)
		}
	}
	bad := []struct{ args, msg string }{
		{"-x", "unknown option '-x'"},
		{"-px", "unknown option '-x'"},
		{"--bogus", "unknown option '--bogus'"},
		{"-s", "option '-s' requires an argument"},
		{"--stall", "option '--stall' requires an argument"},
		{"-q --json=1", "option '--json' doesn't allow an argument"},
		{"-s 12Q", "invalid argument '12Q' for '-s': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b"},
		{"-s @/nonexistent", "invalid argument '@/nonexistent' for '-s': open /nonexistent: no such file or directory"},
		{"-s @/dev/null", "invalid argument '@/dev/null' for '-s': /dev/null: neither a regular file nor a block device"},
		{"-L 0", "invalid argument '0' for '-L': want a rate above 0"},
		{"--buffer-size=2G", "invalid argument '2G' for '--buffer-size': want at most 1 GiB (0: the default)"},
		{"-B x", "invalid argument 'x' for '-B': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b"},
		{"-i -1", "invalid argument '-1' for '-i': want seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d12h)"},
		{"-i x", "invalid argument 'x' for '-i': want seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d12h)"},
		{"-i 12d", "invalid argument '12d' for '-i': want at most 277h46m40s"},
		{"-D x", "invalid argument 'x' for '-D': want seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d12h)"},
		{"-w x", "invalid argument 'x' for '-w': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b"},
		{"-H -3", "invalid argument '-3' for '-H': want a number and an optional unit: K M G T, kB MB GB, KiB MiB GiB, c w b"},
		{"-P ''", ""}, // replaced below: an empty argument
		// pv 1.6.20's options pvcat lacks: one line naming the flag.
		{"-F %b", "-F (--format) is not supported by pvcat"},
		{"-pA5", "-A (--last-written) is not supported by pvcat"},
		{"-T", "-T (--buffer-percent) is not supported by pvcat"},
		{"-l", "-l (--line-mode) is not supported by pvcat"},
		{"-0", "-0 (--null) is not supported by pvcat"},
		{"-c", "-c (--cursor) is not supported by pvcat"},
		{"-E", "-E (--skip-errors) is not supported by pvcat"},
		{"-R 123", "-R (--remote) is not supported by pvcat"},
		{"-d 123:1", "-d (--watchfd) is not supported by pvcat"},
		{"--format=%b", "-F (--format) is not supported by pvcat"},
		// ... also without the value they take.
		{"-F", "-F (--format) is not supported by pvcat"},
		{"-q -A", "-A (--last-written) is not supported by pvcat"},
		{"--remote", "-R (--remote) is not supported by pvcat"},
		{"-pd", "-d (--watchfd) is not supported by pvcat"},
		{"--stall -1", "invalid argument '-1' for '--stall': want seconds (2, 0.5) or a duration (250ms, 5m, 1h30m, 1d12h)"},
		{"--json-fd -5", "invalid argument '-5' for '--json-fd': want a descriptor number"},
	}
	for _, tt := range bad {
		args := strings.Fields(tt.args)
		if tt.args == "-P ''" {
			args, tt.msg = []string{"-P", ""}, "invalid argument '' for '-P': empty file name"
		}
		_, err := parseArgs(args)
		if !errors.Is(err, cli.ErrUsage) || err.Error() != tt.msg {
			t.Errorf("parseArgs(%q) = %v, want usage error %q", tt.args, err, tt.msg)
		}
		if exitCode(err) != 2 {
			t.Errorf("parseArgs(%q): exit code %d, want 2", tt.args, exitCode(err))
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-qh"}} {
		if _, err := parseArgs(args); !errors.Is(err, cli.ErrHelp) {
			t.Errorf("%v: %v, want cli.ErrHelp", args, err)
		}
	}
	for _, args := range [][]string{{"-V"}, {"--version"}, {"-qV"}} {
		if _, err := parseArgs(args); !errors.Is(err, cli.ErrVersion) {
			t.Errorf("%v: %v, want cli.ErrVersion", args, err)
		}
	}
	// Blanks inside one argument, as a shell passes -s "1 M".
	c, err := parseArgs([]string{"-s", "1 M", "-L", " 2 k"})
	if err != nil || c.size != 1<<20 || c.rateLimit != 2<<10 {
		t.Errorf(`-s "1 M" -L " 2 k": %+v, %v`, c, err)
	}
}
