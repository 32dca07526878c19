package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/receive"
)

// options are blkwrite's own flags.
type options struct {
	raw, framed, assumeZeroed, noVerify bool // --raw, --framed, --assume-zeroed, --no-verify
	resumePoint                         bool // --resume-point
	keep                                int  // --keep N: versions to keep
	versions                            bool // --versions
	bareTarget                          bool // blkwrite DST rather than of=DST
}

// run is blkwrite with its real world passed in. It tells a framed stream
// from raw input: a framed one is applied and verified by receive, raw
// input is copied by the dd engine; both write through a guarded target.
func run(name string, args []string, stdin, stdout *os.File, stderr io.Writer) (err error) {
	usr1 := ddtool.Notify()
	set := ddtool.ReadSettings(os.Getenv)
	if args, err = restrict(args); err != nil {
		return err
	}
	ops, opt, err := parse(args)
	if err != nil {
		return ddtool.Help(err, "blkwrite", usage, stdout)
	}
	if opt.resumePoint {
		return receive.ResumePoint(set.StateDir, ops.Of, stdout)
	}
	if opt.versions {
		return listVersions(ops.Of, set.StateDir, stdout, stderr)
	}

	ctx, rep, end := ddtool.Begin(name, ops, stderr)
	defer end(&err)
	in, err := ddtool.OpenInput(ops, stdin, rep, false, set)
	if err != nil {
		return err
	}
	defer in.F.Close()

	// Waiting for the first bytes is part of dd's copy: its clock runs
	// and SIGUSR1 reports "0+0 records in" meanwhile.
	start := time.Now()
	rep.Restart(start)
	stopReports := ddtool.ReportOnSignal(rep, usr1)
	var framed, empty, cut bool
	err = ddtool.Interruptible(ctx, func() (err error) {
		framed, empty, cut, err = receive.Detect(in, int(ops.IBS))
		return err
	})
	stopReports()
	if err == ddtool.ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if err != nil { // never: read errors are left for the copy to report
		return &ddmsg.Error{Msg: "error reading " + ddmsg.Quote(in.Name), Err: err}
	}
	if empty && opt.bareTarget {
		// `ssh host blkcat ... | blkwrite DST` whose sender failed
		// before its first byte: dd would truncate a file and report
		// success.
		return fmt.Errorf("%s is empty (did the sender fail?): %s was left as it was; of=%s copies an empty input as dd does",
			ddmsg.Quote(in.Name), ddmsg.Quote(ops.Of), ops.Of)
	}
	if cut && !opt.raw && (opt.bareTarget || opt.framed) {
		// The same for a sender that died in its first write: the
		// few bytes are a framed stream's start, not data.
		return fmt.Errorf("%s ends inside a framed stream's header (did the sender fail?): %s was left as it was; --raw copies it as data",
			ddmsg.Quote(in.Name), ddmsg.Quote(ddtool.OutputName(ops)))
	}
	framed = framed && !opt.raw
	if opt.framed && !framed {
		return fmt.Errorf("%s is not a framed stream (no blkpipe header); use --raw for raw data", ddmsg.Quote(in.Name))
	}
	if framed && ops.Text.Active() {
		// Converted, the stream's bytes would no longer be the data its
		// checksums cover; decoded, the data would land unconverted,
		// unlike dd's.
		return ddtool.Usage(fmt.Sprintf("%s is a framed stream: the text conversions (conv=ucase, swab, block, ...) apply on the sending side (blkcat conv=... --frame), or use --raw to convert the stream's bytes", ddmsg.Quote(in.Name)))
	}
	if opt.keep > 0 && (!framed || opt.noVerify) {
		return fmt.Errorf("--keep: %s was left as it was: only a verified copy makes a good version, so --keep needs a framed stream (blkcat --frame) without --no-verify", ddmsg.Quote(ddtool.OutputName(ops)))
	}
	if framed {
		return framedKeep(ctx, opt.keep, receive.Options{
			Ops: ops, NoVerify: opt.noVerify, AssumeZeroed: opt.assumeZeroed,
			State: set.StateDir, ResumeEvery: resumeEvery(os.Getenv("BLKPIPE_RESUME_EVERY")),
			SSH: os.Getenv("SSH_CONNECTION") != "",
		}, stderr, func(o receive.Options) error { return receive.Framed(ctx, o, in, stdout, rep, usr1) })
	}

	p := ddcopy.ParamsOf(ops)
	out, err := ddtool.OpenOutput(ops, stdout, true, p.StreamSize(in))
	if err != nil {
		return err
	}
	defer out.F.Close()
	c := &ddcopy.Copier{P: p, In: *in, Out: *out, R: rep}
	set.Tune(c)
	c.OnWriteError = func(err error, written int64) error { return out.ExplainFull(name, err, written) }
	return ddtool.Copy(ctx, c, stdout, usr1, start, nil)
}

// resumeEvery is $BLKPIPE_RESUME_EVERY, v: a Go duration, else the
// default.
func resumeEvery(v string) time.Duration {
	if d, err := time.ParseDuration(v); v != "" && err == nil {
		return d
	}
	return receive.DefaultResumeEvery
}

// restrict applies --allow PATH (restricted mode for an ssh forced
// command) and returns the arguments to parse.
func restrict(args []string) ([]string, error) {
	var allows, rest []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--allow" && i+1 < len(args):
			allows = append(allows, args[i+1])
			i++
		case strings.HasPrefix(args[i], "--allow="):
			allows = append(allows, strings.TrimPrefix(args[i], "--allow="))
		case args[i] == "--allow":
			return nil, ddtool.Usage("option '--allow' needs a value")
		default:
			rest = append(rest, args[i])
		}
	}
	if len(allows) == 0 {
		return args, nil
	}
	forced, rest := receive.Forced(rest)
	orig, haveSSH := os.LookupEnv("SSH_ORIGINAL_COMMAND")
	client, err := receive.Restrict("blkwrite", allows, rest, orig, haveSSH, func(args []string) (string, error) {
		ops, _, err := parse(args)
		if err != nil {
			return "", err
		}
		return ops.Of, nil
	})
	if err != nil {
		return nil, err
	}
	return receive.WithForced(client, forced)
}

// parse reads blkwrite's command line: the shared options and operands,
// and --raw, --framed, --assume-zeroed, --no-verify and --resume-point.
func parse(args []string) (*ddargs.Operands, options, error) {
	var opt options
	p := ddtool.Parser{Positional: "of", Flags: map[string]func(ddtool.Flag) error{
		"resume-point":  ddtool.Bool(&opt.resumePoint),
		"raw":           ddtool.Bool(&opt.raw),
		"framed":        ddtool.Bool(&opt.framed),
		"assume-zeroed": ddtool.Bool(&opt.assumeZeroed),
		"no-verify":     ddtool.Bool(&opt.noVerify),
		"keep":          keepFlag(&opt.keep),
		"versions":      ddtool.Bool(&opt.versions),
	}}
	a, err := p.Parse(args)
	if err != nil {
		return nil, opt, err
	}
	opt.bareTarget = a.BareTarget
	if opt.raw && opt.framed {
		return nil, opt, ddtool.Usage("--raw and --framed cannot be combined")
	}
	return a.Ops, opt, nil
}
