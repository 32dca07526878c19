package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden summarises a recorded `go test -json` run of a package with a
// passing, a skipped, a failing test and subtests, a passing package and one
// that does not build.
func TestGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run(bytes.NewReader(in), &out)
	if err != nil || code != 1 {
		t.Fatalf("run = %d, %v; want 1, nil", code, err)
	}
	if *update {
		if err := os.WriteFile("testdata/run.golden", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/run.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from testdata/run.golden:\n%s", out.String())
	}
	for _, quiet := range []string{"quiet", "TestPass"} {
		if strings.Contains(out.String(), quiet) {
			t.Errorf("a passing test's output %q is shown", quiet)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name, in string
		code     int
		last     string
	}{
		{"pass", `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`, 0, "1 passed, 0 failed, 0 skipped\n"},
		{"skip only", `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: needs root\n"}
{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`, 0, "SKIP p TestA: needs root\n0 passed, 0 failed, 1 skipped\n"},
		{"output cut", `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
`, 1, "=== RUN   TestA\nFAIL\tp\t(no result: go test output ended)\n0 passed, 1 failed, 0 skipped\n"},
		{"text error", "no Go files in /x\n", 0, "no Go files in /x\n0 passed, 0 failed, 0 skipped\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := run(strings.NewReader(tt.in), &out)
			if err != nil || code != tt.code {
				t.Fatalf("run = %d, %v; want %d, nil", code, err, tt.code)
			}
			if !strings.HasSuffix(out.String(), tt.last) {
				t.Errorf("output\n%s\nwant it to end with\n%s", out.String(), tt.last)
			}
		})
	}
}
