package main

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/send"
)

// --digest has two meanings. With a framed stream (--frame, -z, --against,
// --resume) it chooses the digest END carries: --digest=ALG, or --digest
// ALG when ALG is blake3 or sha256. Without one, blkcat --digest[=ALG]
// SRC... prints each SRC's digest as b3sum or sha256sum does, and
// blkcat --check SRC... rehashes SRC against its digest map.

// streamFlags are the options that make blkcat write a stream, so that
// --digest chooses the stream's digest instead of printing SRC's.
var streamFlags = map[string]bool{"frame": true, "z": true, "compress": true, "against": true, "resume": true, "sums": true}

// flagName returns the name of the option a is ("z" for "-z", "digest"
// for "--digest=sha256"), or "" for an operand.
func flagName(a string) string {
	if !strings.HasPrefix(a, "-") || a == "-" {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

// joinDigest turns "--digest ALG" into "--digest=ALG" when ALG is an
// algorithm's name: any other word after --digest is not its value.
func joinDigest(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.TrimLeft(a, "-") == "digest" && strings.HasPrefix(a, "-") && i+1 < len(args) {
			if _, err := frame.ParseDigest(args[i+1]); err == nil {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// sumArgs is blkcat --digest SRC... or --check SRC... .
type sumArgs struct {
	check bool
	alg   frame.DigestAlg
	srcs  []string
}

// parseDigestAlg reads --digest's value; no value is BLAKE3.
func parseDigestAlg(v string) (frame.DigestAlg, error) {
	if v == "" {
		return frame.DigestBLAKE3, nil
	}
	alg, err := frame.ParseDigest(v)
	if err != nil {
		return 0, errors.New("want blake3 (the default) or sha256")
	}
	return alg, nil
}

// parseSums returns blkcat's --digest SRC... or --check SRC... command
// line, and ok false for any other (a copy, or a stream whose digest
// --digest chooses). args went through joinDigest.
func parseSums(args []string) (sa sumArgs, ok bool, err error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		switch name := flagName(a); {
		case streamFlags[name]:
			return sa, false, nil
		case name == "digest" || name == "check":
			ok = true
		}
	}
	if !ok {
		return sa, false, nil
	}
	digestSet := false
	p := cli.Parser{Options: []cli.Option{
		{Long: "digest", Arg: cli.Optional, Set: func(v string) (err error) {
			digestSet = true
			sa.alg, err = parseDigestAlg(v)
			return err
		}},
		cli.Bool(0, "check", &sa.check),
	}}
	if sa.srcs, err = p.Parse(args); err != nil {
		return sa, true, err
	}
	if sa.check {
		switch {
		case digestSet && sa.alg != frame.DigestBLAKE3:
			return sa, true, cli.Usagef("--check compares BLAKE3 leaves with the digest map: --digest=sha256 does not apply")
		case len(sa.srcs) == 0:
			return sa, true, cli.Usagef("--check needs SRC: the file or device blkwrite copied to")
		}
		for _, s := range sa.srcs {
			if s == "-" {
				return sa, true, cli.Usagef("--check needs SRC to be a file or device, not standard input")
			}
		}
	}
	return sa, true, nil
}

// runSums prints SRC's digests or checks SRC against its map.
func runSums(name string, sa sumArgs, set ddtool.Settings, stdin *os.File, stdout, stderr io.Writer) error {
	if sa.check {
		return send.Check(name, set.StateDir, sa.srcs, stderr)
	}
	return send.PrintDigests(name, sa.alg, sa.srcs, stdin, stdout, stderr)
}
