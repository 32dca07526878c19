package main

import (
	"fmt"
	"io"
	"os"
	"strings"

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
func parseDigestAlg(f ddtool.Flag) (frame.DigestAlg, error) {
	if !f.HasVal {
		return frame.DigestBLAKE3, nil
	}
	alg, err := frame.ParseDigest(f.Val)
	if err != nil {
		return 0, ddtool.Usage(fmt.Sprintf("invalid --digest value '%s': want blake3 (the default) or sha256", f.Val))
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
	digestSet, flagsDone := false, false
	for _, a := range args {
		if !flagsDone && a == "--" {
			flagsDone = true
			continue
		}
		name := flagName(a)
		if flagsDone || name == "" {
			sa.srcs = append(sa.srcs, a)
			continue
		}
		_, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "h", "help":
			return sa, true, ddtool.ErrHelp
		case "digest":
			if sa.alg, err = parseDigestAlg(ddtool.Flag{Name: name, Val: val, HasVal: hasVal}); err != nil {
				return sa, true, err
			}
			digestSet = true
		case "check":
			if hasVal {
				return sa, true, ddtool.Usage(fmt.Sprintf("option '%s' doesn't allow an argument", strings.SplitN(a, "=", 2)[0]))
			}
			sa.check = true
		default:
			return sa, true, ddtool.Usage(fmt.Sprintf("option '%s' does not apply to --digest SRC... or --check SRC... (they take only files and devices; --digest=ALG with --frame or -z chooses the stream's digest)", a))
		}
	}
	if sa.check {
		switch {
		case digestSet && sa.alg != frame.DigestBLAKE3:
			return sa, true, ddtool.Usage("--check compares BLAKE3 leaves with the digest map: --digest=sha256 does not apply")
		case len(sa.srcs) == 0:
			return sa, true, ddtool.Usage("--check needs SRC: the file or device blkwrite copied to")
		}
		for _, s := range sa.srcs {
			if s == "-" {
				return sa, true, ddtool.Usage("--check needs SRC to be a file or device, not standard input")
			}
		}
	}
	return sa, true, nil
}

// runSums prints SRC's digests or checks SRC against its map.
func runSums(name string, sa sumArgs, stdin *os.File, stdout, stderr io.Writer) error {
	if sa.check {
		return send.Check(name, ddtool.ReadSettings(os.Getenv).StateDir, sa.srcs, stderr)
	}
	return send.PrintDigests(name, sa.alg, sa.srcs, stdin, stdout, stderr)
}
