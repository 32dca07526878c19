// Usr1race starts a command N times, sends it SIGUSR1 as soon as exec has
// succeeded (or DELAY after that, a Go duration), and prints how many of the starts died of that signal; the
// usr1 section of scripts/bench.sh runs it for blkcat, blkwrite and dd.
//
// Synopsis:
//
//	usr1race N DELAY CMD [ARG...]
//
// os.StartProcess returns once the child has exec'd CMD, so the signal
// lands during CMD's own start-up, not in a shell's child before exec
// (which any command would die of). Each start then gets SIGTERM (a later,
// higher-numbered signal, delivered after SIGUSR1) and is waited for.
// Standard input is /dev/zero and output /dev/null, so the command copies
// until it is stopped.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: usr1race N DELAY CMD [ARG...]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "usr1race: invalid N '%s'\n", os.Args[1])
		os.Exit(2)
	}
	delay, err := time.ParseDuration(os.Args[2])
	if err != nil || delay < 0 {
		fmt.Fprintf(os.Stderr, "usr1race: invalid DELAY '%s'\n", os.Args[2])
		os.Exit(2)
	}
	died, err := race(n, delay, os.Args[3:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "usr1race: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(died)
}

// race starts argv n times, each sent SIGUSR1 delay after its exec, and
// returns how many starts SIGUSR1 killed.
func race(n int, delay time.Duration, argv []string) (int, error) {
	in, err := os.Open("/dev/zero")
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	died := 0
	for i := 0; i < n; i++ {
		p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: []*os.File{in, out, out}})
		if err != nil {
			return died, fmt.Errorf("start %s: %w", argv[0], err)
		}
		if delay > 0 {
			time.Sleep(delay) // the benchmark's parameter, not a wait for an event
		}
		p.Signal(syscall.SIGUSR1)
		p.Signal(syscall.SIGTERM)
		st, err := p.Wait()
		if err != nil {
			return died, fmt.Errorf("wait for %s: %w", argv[0], err)
		}
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGUSR1 {
			died++
		}
	}
	return died, nil
}
