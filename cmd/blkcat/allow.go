package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/blkpipe/blkpipe/internal/allow"
	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddtool"
)

// refused is a refusal of a read key's request (exit 3).
func refused(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ddtool.ErrRefused, fmt.Sprintf(format, a...))
}

// restrictRead applies --allow-read PATH (repeatable), the read-only key
// of a restore: the client's command (SSH_ORIGINAL_COMMAND under an ssh
// forced command, else the remaining arguments) may only be blkcat
// reading an allowed source, identified as blkwrite --allow identifies
// its target, to standard output: no of=, no other source, no sums file
// but standard input (--against -). It returns the arguments to parse
// and the grant (nil without --allow-read).
func restrictRead(args []string) ([]string, *allow.Grant, error) {
	var allows, rest []string
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		if name != "--allow-read" {
			rest = append(rest, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, cli.Usagef("option '--allow-read' requires an argument")
			}
			val = args[i+1]
			i++
		}
		allows = append(allows, val)
	}
	if len(allows) == 0 {
		return args, nil, nil
	}
	list, err := allow.Resolve(allows)
	if err != nil {
		return nil, nil, fmt.Errorf("--allow-read: %w", err)
	}
	for _, a := range allows {
		if _, err := os.Stat(a); err != nil {
			return nil, nil, fmt.Errorf("--allow-read: %w", err)
		}
	}
	if orig, ok := os.LookupEnv("SSH_ORIGINAL_COMMAND"); ok {
		if len(rest) > 0 {
			return nil, nil, ddtool.Usage("with --allow-read, give the source in the client's command, not in the forced command")
		}
		words, err := allow.Command("blkcat", orig)
		if err != nil {
			return nil, nil, refused("%v", err)
		}
		rest = words[1:]
	}
	for _, a := range rest {
		if key, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && key == "allow-read" {
			return nil, nil, refused("the client may not change the allow list (--allow-read)")
		}
	}
	ops, opt, err := parse(rest, &adminOptions{})
	if err != nil {
		return nil, nil, err
	}
	allowed := strings.Join(list.Paths(), ", ")
	switch {
	case ops.Of != "":
		return nil, nil, refused("this key reads to standard output only, not of=%s", ops.Of)
	case opt.Against != "" && opt.Against != "-":
		return nil, nil, refused("this key reads sums from standard input only (--against -), not %s", opt.Against)
	case ops.If == "":
		return nil, nil, refused("no source given; allowed: %s", allowed)
	}
	g, err := list.Check(ops.If)
	if errors.Is(err, allow.ErrNotAllowed) {
		return nil, nil, refused("source '%s' is not allowed; allowed: %s", ops.If, allowed)
	}
	if err != nil {
		return nil, nil, err
	}
	if !g.Exists {
		return nil, nil, refused("source '%s' does not exist", ops.If)
	}
	return rest, g, nil
}
