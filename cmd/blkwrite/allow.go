package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/allow"
	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/receive"
)

// restricted is what the forced command's own options say: the allow
// list (--allow PATH), --allow-raw and --idle-timeout.
type restricted struct {
	allows []string
	raw    bool
	idle   time.Duration // 0: no idle timeout
	rs     *receive.Restriction
}

// restrict applies --allow PATH (restricted mode for an ssh forced
// command) and returns the arguments to parse. A client command
// `blkcat --sums DST` for an allowed DST replaces this process with
// blkcat (execBlkcat), so that the nightly delta works through the key.
func restrict(args []string) ([]string, *restricted, error) {
	var r restricted
	var rest []string
	idleSet := false
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		switch name {
		case "--allow", "--idle-timeout":
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, cli.Usagef("option '%s' requires an argument", name)
				}
				val = args[i+1]
				i++
			}
			if name == "--allow" {
				r.allows = append(r.allows, val)
				continue
			}
			d, err := cli.ParseDuration(val)
			if err != nil {
				return nil, nil, cli.Usagef("invalid argument '%s' for '--idle-timeout': %v", val, err)
			}
			r.idle, idleSet = d, true
		case "--allow-raw":
			r.raw = true
		default:
			rest = append(rest, args[i])
		}
	}
	if len(r.allows) == 0 {
		return rest, &r, nil // --allow-raw alone permits nothing more
	}
	if !idleSet {
		r.idle = receive.DefaultIdleTimeout
	}
	list, err := allow.Resolve(r.allows)
	if err != nil {
		return nil, nil, fmt.Errorf("--allow: %w", err)
	}
	orig, haveSSH := os.LookupEnv("SSH_ORIGINAL_COMMAND")
	if haveSSH {
		if words, err := receive.ClientWords("blkcat", orig); err == nil {
			return nil, nil, execBlkcat(list, words)
		}
	}
	// --keep N on the forced command line applies to every stream of
	// this key; the client may not change it (receive.WithForced).
	forced, rest := receive.Forced(rest)
	rest, g, err := receive.Restrict("blkwrite", list, rest, orig, haveSSH, func(args []string) (string, error) {
		ops, _, err := parse(args)
		if err != nil {
			return "", err
		}
		return ops.Of, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if rest, err = receive.WithForced(rest, forced); err != nil {
		return nil, nil, err
	}
	if r.rs, err = receive.NewRestriction(g, r.raw); err != nil {
		return nil, nil, err
	}
	return rest, &r, nil
}

// execve replaces the process (syscall.Exec); tests record the call.
var execve = syscall.Exec

// sumsValue is what --sums=BS may say: a size such as 4K or 65536.
var sumsValue = regexp.MustCompile(`^[0-9]+[A-Za-z]*$`)

// execBlkcat runs the one blkcat command a write key may: `blkcat --sums
// DST` (optionally --sums=BS, -q, status=none) for an allowed DST, by
// executing the blkcat installed next to this blkwrite. It returns only
// on failure.
func execBlkcat(list *allow.List, words []string) error {
	var target string
	sums := false
	for _, w := range words[1:] {
		switch {
		case w == "--sums" || strings.HasPrefix(w, "--sums=") && sumsValue.MatchString(strings.TrimPrefix(w, "--sums=")):
			sums = true
		case w == "-q" || w == "status=none":
		case target == "" && !strings.HasPrefix(w, "-") && (!strings.Contains(w, "=") || strings.HasPrefix(w, "if=")):
			target = strings.TrimPrefix(w, "if=")
		default:
			return receive.Refused(fmt.Sprintf("this key runs only `blkcat --sums DST` of blkcat, not %q", strings.Join(words, " ")))
		}
	}
	if !sums {
		return receive.Refused(fmt.Sprintf("this key runs only `blkcat --sums DST` of blkcat, not %q", strings.Join(words, " ")))
	}
	g, err := receive.Grant(list, target)
	if err != nil {
		return err
	}
	if !g.Exists {
		return receive.Refused(fmt.Sprintf("%s does not exist: there are no sums of it", target))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin := filepath.Join(filepath.Dir(self), "blkcat")
	argv := append([]string{"blkcat"}, words[1:]...)
	for i, w := range argv {
		if w == target || w == "if="+target {
			argv[i] = "if=" + g.Path
		}
	}
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SSH_ORIGINAL_COMMAND=") {
			env = append(env, e)
		}
	}
	if err := execve(bin, argv, env); err != nil {
		return &os.PathError{Op: "exec", Path: bin, Err: err}
	}
	return nil
}
