package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/send"
	"github.com/blkpipe/blkpipe/internal/sums"
)

// run is blkcat with its real world passed in. It reads the source with
// O_DIRECT unasked and writes it, or what send makes of it, to the output.
// getenv is os.Getenv, read here once for the settings.
func run(name string, args []string, stdin, stdout *os.File, stderr io.Writer, getenv func(string) string) (err error) {
	usr1 := ddtool.Notify()
	set := ddtool.ReadSettings(getenv)
	args, grant, err := restrictRead(args) // allow.go
	if err != nil {
		return err
	}
	args = joinDigest(args) // digest.go
	if sa, ok, err := parseSums(args); ok {
		if err != nil {
			return ddtool.HelpOrError(err, stdout, "blkcat", usage)
		}
		if grant != nil {
			return refused("this key reads its source as a stream only, not --digest SRC or --check SRC")
		}
		return runSums(name, sa, set, stdin, stdout, stderr)
	}
	var adm adminOptions
	ops, opt, err := parse(args, &adm)
	if err != nil {
		return ddtool.HelpOrError(err, stdout, "blkcat", usage)
	}
	if err := checkTerminal(adm, opt, ops, stdout); err != nil {
		return err
	}
	bar := newBar(adm, stderr) // admin.go
	if bar != nil {
		stderr = bar // dd's reports erase the bar's line first
	}
	sum := newSummary(adm, &opt, ops)

	ctx, rep, end := ddtool.Begin(name, ops, stderr)
	defer end(&err)
	if sum != nil {
		defer func() { err = sum.End(stderr, name, rep, err, time.Now()) }()
	}
	in, err := ddtool.OpenInput(ops, stdin, rep, true, set)
	if err != nil {
		return err
	}
	defer in.F.Close()
	if grant != nil {
		if err := grant.Verify(in.F); err != nil {
			return refused("%v", err)
		}
	}
	out, err := ddtool.OpenOutput(ops, stdout, false, -1)
	if err != nil {
		return err
	}
	defer out.F.Close()

	if opt.ChangedFrom != "" {
		return sendChanged(ctx, opt, in, out, rep, set.StateDir)
	}
	c := &ddcopy.Copier{P: ddcopy.ParamsOf(ops), In: *in, Out: *out, R: rep}
	set.Tune(c)
	if opt.Sums > 0 && !opt.SumsReread {
		if done, err := send.FromKept(opt, c, set.StateDir); done || err != nil {
			return err
		}
	}
	snd, err := send.New(ctx, opt, c, stdin, set.StateDir)
	if err == ddtool.ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if err != nil {
		return err
	}
	var finish func(error) error
	if snd != nil {
		// A frame writer is lent the read buffers (full blocks are sent
		// from them, not copied), so the ring is the default 6 chunks.
		c.Sink, finish = snd.Sink, snd.Finish
	}
	finish, stop := watch(bar, sum, c, snd, finish)
	defer stop()
	return ddtool.Copy(ctx, c, stdout, usr1, time.Time{}, finish)
}

// parse reads blkcat's command line: the shared options and operands, and
// --frame, -z, --sums, --against and --resume.
func parse(args []string, adm *adminOptions) (*ddargs.Operands, send.Options, error) {
	var opt send.Options
	// The flag table: one cli.Option per option of blkcat's own.
	p := ddtool.Parser{Positional: "if", Options: []cli.Option{
		cli.Bool(0, "frame", &opt.Frame),
		cli.Bool(0, "progress", &adm.progress), // admin.go
		cli.Bool('f', "force", &adm.force),
		cli.Bool(0, "json", &adm.json),
		cli.Func('z', "compress", func(v string) (err error) {
			opt.Codec, opt.Level, err = frame.ParseCodec(v)
			opt.Frame = true
			return err
		}),
		{Long: "digest", Arg: cli.Optional, Set: func(v string) (err error) {
			opt.Digest, err = parseDigestAlg(v)
			return err
		}},
		{Long: "sums", Arg: cli.Optional, Set: func(v string) (err error) {
			opt.Sums, err = parseSumsBS(v)
			return err
		}},
		cli.Bool(0, "sums-reread", &opt.SumsReread),
		cli.Func(0, "against", func(v string) error {
			opt.Against = v
			if v == "" {
				return ddtool.Usage("--against needs SUMS: a file, or - for standard input")
			}
			return nil
		}),
		cli.Func(0, "changed-from", nonEmpty(&opt.ChangedFrom, "--changed-from needs BASE: the snapshot the target's last verified copy was made from")),
		cli.Func(0, "changes", nonEmpty(&opt.Changes, "--changes needs FILE: a change list from snapctl changes BASE SNAP")),
		cli.Func(0, "resume", func(v string) error {
			// An empty token is what "$(ssh backup blkwrite
			// --resume-point DST)" gives when there is nothing to
			// resume: refuse it, or blkcat would send a raw,
			// unverified copy where a framed one was asked for.
			opt.Resume = v
			if v == "" {
				return ddtool.Usage("invalid --resume token '': want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point (it prints none when there is nothing to resume)")
			}
			return nil
		}),
	}}
	a, err := p.Parse(args)
	if err != nil {
		return nil, opt, err
	}
	ops := a.Ops
	if opt.Frame {
		switch {
		case ops.Seek != 0:
			return nil, opt, ddtool.Usage("--frame cannot be combined with seek= (the receiver places the data)")
		case ops.Conv.Sparse:
			return nil, opt, ddtool.Usage("--frame cannot be combined with conv=sparse (zero blocks are sent as ZERO records)")
		case ops.OFlag.Direct:
			return nil, opt, ddtool.Usage("--frame cannot be combined with oflag=direct")
		}
	}
	if err := checkDeltaOptions(&opt, ops); err != nil {
		return nil, opt, err
	}
	if err := checkAdmin(*adm, ops); err != nil {
		return nil, opt, err
	}
	return ops, opt, nil
}

// parseSumsBS parses --sums=BS; "" is the default block size.
func parseSumsBS(v string) (int, error) {
	if v == "" {
		return sums.DefaultBlockSize, nil
	}
	n, err := ddargs.ParseNumber(v)
	if err != nil || n < sums.MinBlockSize || n > sums.MaxBlockSize || n%512 != 0 {
		return 0, ddtool.Usage(fmt.Sprintf("invalid --sums block size '%s' (a multiple of 512 from 512 to 16M, e.g. 4K)", v))
	}
	return int(n), nil
}

// checkDeltaOptions rejects combinations that make no sense, after parse.
func checkDeltaOptions(opt *send.Options, ops *ddargs.Operands) error {
	modes := 0
	if opt.Changes != "" && opt.ChangedFrom == "" {
		return ddtool.Usage("--changes FILE goes with --changed-from BASE")
	}
	// --resume with --changed-from resumes a changed-block delta
	// (counted once: it is that mode).
	for _, on := range []bool{opt.Sums > 0, opt.Against != "", opt.Resume != "" && opt.ChangedFrom == "", opt.ChangedFrom != ""} {
		if on {
			modes++
		}
	}
	if opt.SumsReread && opt.Sums == 0 {
		return ddtool.Usage("--sums-reread applies to --sums")
	}
	if modes > 1 {
		return ddtool.Usage("--sums, --against, --resume and --changed-from cannot be combined")
	}
	if modes == 0 {
		return nil
	}
	if opt.Sums > 0 && opt.Digest != 0 {
		return ddtool.Usage("--sums writes block digests, not a framed stream: --digest does not apply")
	}
	if opt.Sums > 0 && opt.Frame {
		return ddtool.Usage("--sums writes block digests, not a framed stream: --frame and -z do not apply")
	}
	if ops.Skip != 0 || ops.Count >= 0 || ops.Seek != 0 || ops.Conv.Sync {
		return ddtool.Usage("--sums, --against and --resume read all of SRC: skip=, count=, seek= and conv=sync do not apply")
	}
	if ops.Text.Active() {
		return ddtool.Usage("--sums, --against and --resume read all of SRC as it is: the text conversions (conv=ucase, swab, block, ...) do not apply")
	}
	if ops.If == "" {
		return ddtool.Usage("--sums, --against and --resume need SRC to be a device or file (not standard input)")
	}
	if opt.Against != "" || opt.Resume != "" || opt.ChangedFrom != "" {
		opt.Frame = true
	}
	return nil
}
