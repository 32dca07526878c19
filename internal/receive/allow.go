package receive

import (
	"fmt"
	"strings"

	"github.com/blkpipe/blkpipe/internal/allow"
	"github.com/blkpipe/blkpipe/internal/ddtool"
)

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return "refused: " + e.msg }
func (e *refusedError) Unwrap() error { return ddtool.ErrRefused }

// Restrict applies --allow for the tool name: the real request is the
// client's command in sshOrig (SSH_ORIGINAL_COMMAND, when blkwrite runs as
// an ssh forced command) or else the remaining arguments. The request may
// name only an allowed target, by identity (see package allow), and may
// not read a local file (if=) or change the forced command's options
// (--allow, --allow-raw, --idle-timeout); target parses arguments into the
// target they name. It returns the arguments to parse and the grant of
// the target.
func Restrict(name string, list *allow.List, own []string, sshOrig string, haveSSH bool, target func(args []string) (string, error)) ([]string, *allow.Grant, error) {
	args := own
	if haveSSH {
		words, err := ClientWords(name, sshOrig)
		if err != nil {
			return nil, nil, err
		}
		if len(own) > 0 {
			return nil, nil, ddtool.Usage("with --allow, give the target in the client's command, not in the forced command")
		}
		args = words[1:]
	}
	for _, a := range args {
		key, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case strings.HasPrefix(a, "-") && (key == "allow" || key == "allow-raw" || key == "allow-read" || key == "idle-timeout"):
			return nil, nil, &refusedError{fmt.Sprintf("the client may not change the forced command's options (--%s)", key)}
		case !strings.HasPrefix(a, "-") && key == "if" && strings.Contains(a, "="):
			return nil, nil, &refusedError{"the client may not read a local file (if=)"}
		}
	}
	of, err := target(args)
	if err != nil {
		return nil, nil, err
	}
	g, err := Grant(list, of)
	return args, g, err
}

// ClientWords splits the client's command and checks that it runs name.
func ClientWords(name, sshOrig string) ([]string, error) {
	words, err := allow.Command(name, sshOrig)
	if err != nil {
		return nil, &refusedError{err.Error()}
	}
	return words, nil
}

// Grant checks path, the target a client named, against list.
func Grant(list *allow.List, path string) (*allow.Grant, error) {
	allows := strings.Join(list.Paths(), ", ")
	if path == "" {
		return nil, &refusedError{fmt.Sprintf("no target given; allowed: %s", allows)}
	}
	g, err := list.Check(path)
	if err != nil {
		return nil, &refusedError{fmt.Sprintf("target '%s' is not allowed; allowed: %s", path, allows)}
	}
	return g, nil
}
