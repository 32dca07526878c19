package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"-pterb", "--progress --timer --eta --rate --bytes"},
		{"-s 700G", "--size 700G"},
		{"-s700G -q", "--size 700G --quiet"},
		{"-nL1M -i 0.5", "--numeric --rate-limit 1M --interval 0.5"},
		{"-nS -s 5", "--numeric --stop-at-size --size 5"},
		{"-fN name", "--force --name name"},
		{"--size=3 --json -json-fd 3", "--size=3 --json -json-fd 3"},
		{"-px", "--progress -x"},
		{"-- -p", "-- -p"},
		{"-s", "--size"},
		{"-Vw80 -H 5", "--version --width 80 --height 5"},
		{"-D1.5 -P /run/p", "--delay-start 1.5 --pidfile /run/p"},
		{"-pF%b -0l -A5", "--progress --format %b --null --line-mode --last-written 5"},
	}
	for _, tt := range tests {
		got := strings.Join(expand(strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

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
		{"", config{fields: def, interval: 1, jsonFD: -1}},
		{"-s 700G", config{size: 700 << 30, sizeSet: true, fields: def, interval: 1, jsonFD: -1}},
		{"-s @" + img, config{size: 12345, sizeSet: true, fields: def, interval: 1, jsonFD: -1}},
		{"-n", config{numeric: true, interval: 1, jsonFD: -1}},
		{"-ntb -i 0.5", config{numeric: true, fields: progressFields{timer: true, bytes: true}, interval: 0.5, jsonFD: -1}},
		{"-aI -qfSWC -N x -L 1M -B 64K", config{fields: progressFields{average: true, fineta: true},
			quiet: true, force: true, stopAt: true, wait: true, noSplice: true, name: "x",
			rateLimit: 1 << 20, bufSize: 64 << 10, interval: 1, jsonFD: -1}},
		{"--json-fd 3 --stall 2.5", config{fields: def, interval: 1, json: true, jsonFD: 3, stall: 2.5}},
		{"-w 120 -H 40 -D 2.5 -P /run/pvcat.pid", config{fields: def, interval: 1, jsonFD: -1,
			width: 120, height: 40, delay: 2.5, pidfile: "/run/pvcat.pid"}},
		{"-w 0 -w 1k -H 9999999", config{fields: def, interval: 1, jsonFD: -1, width: 1024, height: 999999}},
		// pv 1.6.20 takes -i 0 and draws about every 0.1 s; pvcat's
		// shortest interval is 0.1 s. pv reads a decimal comma too.
		{"-i 0", config{fields: def, interval: 0.1, jsonFD: -1}},
		{"-i 0.02", config{fields: def, interval: 0.1, jsonFD: -1}},
		{"-i 0,5 -D 1,5", config{fields: def, interval: 0.5, delay: 1.5, jsonFD: -1}},
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
		{"-x", "flag provided but not defined: -x"},
		{"--bogus", "flag provided but not defined: -bogus"},
		{"file", `unexpected operand "file": pvcat reads stdin only (pvcat < FILE)`},
		{"-s 12Q", `-s: invalid size "12Q"`},
		{"-s @/nonexistent", "-s: open /nonexistent: no such file or directory"},
		{"-s @/dev/null", "-s: /dev/null: neither a regular file nor a block device"},
		{"-L 0", `-L: invalid rate "0"`},
		{"-B 0", `-B: invalid buffer size "0" (1 byte to 1 GiB)`},
		{"-i -1", "-i: invalid interval -1 (want seconds >= 0)"},
		{"-i x", `invalid value "x" for flag -interval: parse error`},
		{"-D x", `invalid value "x" for flag -delay-start: parse error`},
		{"-D -2", "-D: invalid delay -2 (want seconds >= 0)"},
		{"-w x", `-w: invalid width "x"`},
		{"-H -3", `-H: invalid height "-3"`},
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
		{"--stall -1", "--stall: invalid seconds -1"},
		{"--json-fd -5", "--json-fd: invalid descriptor -5"},
	}
	for _, tt := range bad {
		_, err := parseArgs(strings.Fields(tt.args))
		var ue usageError
		if !errors.As(err, &ue) || err.Error() != tt.msg {
			t.Errorf("parseArgs(%q) = %v, want usage error %q", tt.args, err, tt.msg)
		}
		if exitCode(err) != 2 {
			t.Errorf("parseArgs(%q): exit code %d, want 2", tt.args, exitCode(err))
		}
	}
	if _, err := parseArgs([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	for _, args := range [][]string{{"-V"}, {"--version"}, {"-qV"}} {
		if _, err := parseArgs(args); !errors.Is(err, errVersion) || exitCode(err) != 0 {
			t.Errorf("%v: %v, want errVersion and exit 0", args, err)
		}
	}
	// Blanks inside one argument, as a shell passes -s "1 M".
	c, err := parseArgs([]string{"-s", "1 M", "-L", " 2 k"})
	if err != nil || c.size != 1<<20 || c.rateLimit != 2<<10 {
		t.Errorf(`-s "1 M" -L " 2 k": %+v, %v`, c, err)
	}
}
