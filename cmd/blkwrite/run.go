package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
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
	last, json                          bool // --last, --json (admin.go)
	keep                                int  // --keep N: versions to keep
	versions                            bool // --versions
	bareTarget                          bool // blkwrite DST rather than of=DST
}

// run is blkwrite with its real world passed in. It tells a framed stream
// from raw input: a framed one is applied and verified by receive, raw
// input is copied by the dd engine; both write through a guarded target.
// getenv is os.Getenv, read here once for the settings, SSH_CONNECTION
// and BLKPIPE_RESUME_EVERY.
func run(name string, args []string, stdin, stdout *os.File, stderr io.Writer, getenv func(string) string) (err error) {
	usr1 := ddtool.Notify()
	set := ddtool.ReadSettings(getenv)
	every, err := resumeEvery(getenv("BLKPIPE_RESUME_EVERY"))
	if err != nil {
		return err
	}
	args, lim, err := restrict(args) // allow.go
	if err != nil {
		return err
	}
	ops, opt, err := parse(args)
	if err != nil {
		return ddtool.HelpOrError(err, stdout, "blkwrite", usage)
	}
	if err := lim.rs.CheckOptions(ops, opt.noVerify, opt.assumeZeroed, opt.raw); err != nil {
		return err
	}
	if opt.resumePoint {
		return receive.ResumePoint(set.StateDir, ops.Of, stdout)
	}
	if opt.versions {
		return listVersions(ops.Of, set.StateDir, stdout, stderr)
	}
	if opt.last {
		return receive.Last(set.StateDir, ops.Of, opt.json, stdout)
	}

	ctx, rep, end := ddtool.Begin(name, ops, stderr)
	defer end(&err)
	sum := newSummary(opt, ops) // admin.go
	if sum != nil {
		defer func() { err = sum.end().End(stderr, name, rep, err, time.Now()) }()
	}
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
	ctx, idle := receive.WatchIdle(ctx, in.F, lim.idle, ddmsg.Quote(ddtool.OutputName(ops)))
	defer idle.Stop()
	var pre *receive.Preloaded
	if ops.Of != "" && !opt.noVerify && lim.rs == nil {
		pre = receive.Preload(set.StateDir, ops.Of) // a delta's, while the stream comes
	}
	var framed, empty, cut bool
	err = ddtool.Interruptible(ctx, func() (err error) {
		framed, empty, cut, err = receive.Detect(in, int(ops.IBS))
		return err
	})
	stopReports()
	if err == ddtool.ErrInterrupted {
		rep.Report(time.Now())
		if c := receive.IdleCause(ctx); c != nil {
			return c
		}
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
	if !framed {
		if err := lim.rs.RefuseRaw(in.Name); err != nil {
			return err
		}
	}
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
		src := io.Reader(in.F)
		if in.R != nil {
			src = in.R
		}
		idle.Reset(src) // --idle-timeout watches the stream's reads
		in.R = idle
		return framedKeep(ctx, opt.keep, receive.Options{ // keep.go
			Ops: ops, NoVerify: opt.noVerify, AssumeZeroed: opt.assumeZeroed,
			State: set.StateDir, ResumeEvery: every, NoAIO: set.NoAIO, Preloaded: pre,
			SSH: getenv("SSH_CONNECTION") != "", Result: sum.framed(in), Restrict: lim.rs,
		}, stderr, func(o receive.Options) error { return receive.Framed(ctx, o, in, stdout, rep, usr1) })
	}

	if in.R != nil {
		idle.Reset(in.R) // a pipe or socket: watch it (--idle-timeout)
		in.R = idle
	} else {
		idle.Stop() // a file: it does not idle
	}
	if ops.Of != "" {
		// Raw data is not verified: what a copy record says of DST
		// stops being true with the first byte.
		if err := receive.RemoveKept(set.StateDir, ops.Of); err != nil {
			return err
		}
	}
	p := ddcopy.ParamsOf(ops)
	out, err := ddtool.OpenOutput(ops, stdout, true, p.StreamSize(in))
	if err != nil {
		return err
	}
	defer out.F.Close()
	if lim.rs != nil {
		if err := lim.rs.Grant.Verify(out.F); err != nil {
			return receive.Refused(err.Error())
		}
	}
	c := &ddcopy.Copier{P: p, In: *in, Out: *out, R: rep}
	set.Tune(c)
	c.OnWriteError = func(err error, written int64) error { return out.ExplainFull(name, err, written) }
	return ddtool.Copy(ctx, c, stdout, usr1, start, nil)
}

// resumeEvery is $BLKPIPE_RESUME_EVERY, v: a duration as
// cli.ParseDuration reads it (2, 0.5, 250ms, 1h), or the default when
// unset or empty. A value that is no duration is an error, named.
func resumeEvery(v string) (time.Duration, error) {
	if v == "" {
		return receive.DefaultResumeEvery, nil
	}
	d, err := cli.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid BLKPIPE_RESUME_EVERY '%s': %w", v, err)
	}
	return d, nil
}

// parse reads blkwrite's command line: the shared options and operands,
// and --raw, --framed, --assume-zeroed, --no-verify and --resume-point.
func parse(args []string) (*ddargs.Operands, options, error) {
	var opt options
	// The flag table: one cli.Option per option of blkwrite's own.
	p := ddtool.Parser{Positional: "of", Options: []cli.Option{
		cli.Bool(0, "resume-point", &opt.resumePoint),
		cli.Bool(0, "raw", &opt.raw),
		cli.Bool(0, "framed", &opt.framed),
		cli.Bool(0, "assume-zeroed", &opt.assumeZeroed),
		cli.Bool(0, "no-verify", &opt.noVerify),
		cli.Bool(0, "json", &opt.json),
		cli.Bool(0, "last", &opt.last),
		cli.Func(0, "keep", keepFlag(&opt.keep)),
		cli.Bool(0, "versions", &opt.versions),
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
