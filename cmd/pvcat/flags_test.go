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
	for _, bad := range []string{"", "G", "12Q", "-1", "1.2.3M", "9E", "99999999999999999999"} {
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
		{"-i 0", "-i: invalid interval 0 (want seconds > 0)"},
		{"-i x", `invalid value "x" for flag -interval: parse error`},
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
}
