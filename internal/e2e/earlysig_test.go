package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestEarlySIGUSR1Init: the SIGUSR1 handler (internal/earlysig) is
// installed during package initialisation right after os/signal, before
// the compression and hashing libraries' initialisation, so that a
// SIGUSR1 sent as the tool starts is queued, not fatal (issue #19). Go
// prints the order of package initialisation with GODEBUG=inittrace=1.
// A library package initialised before os/signal (klauspost's cpuinfo,
// which imports nothing) cannot be preceded by any handler and is allowed.
func TestEarlySIGUSR1Init(t *testing.T) {
	heavy := []string{"github.com/klauspost/", "github.com/pierrec/", "lukechampine.com/"}
	for _, tool := range []string{"blkcat", "blkwrite", "pvcat"} {
		t.Run(tool, func(t *testing.T) {
			cmd := exec.Command(testutil.Tool(t, tool), "--version")
			cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", tool, err, out)
			}
			var pkgs []string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
					pkgs = append(pkgs, f[1])
				}
			}
			index := func(pkg string) int {
				for i, p := range pkgs {
					if p == pkg {
						return i
					}
				}
				t.Fatalf("no init line for %s in:\n%s", pkg, out)
				return -1
			}
			sig, early := index("os/signal"), index("github.com/blkpipe/blkpipe/internal/earlysig")
			if early != sig+1 {
				t.Errorf("earlysig initialised at %d, not right after os/signal (%d): %q", early, sig, pkgs[sig:early+1])
			}
			seen := 0
			for i, p := range pkgs {
				for _, h := range heavy {
					if strings.HasPrefix(p, h) {
						seen++
						if i > sig && i < early {
							t.Errorf("%s initialised before earlysig installed the SIGUSR1 handler", p)
						}
					}
				}
			}
			if seen == 0 && tool != "pvcat" {
				t.Errorf("no compression library in the init trace; the test proves nothing:\n%s", out)
			}
		})
	}
}
