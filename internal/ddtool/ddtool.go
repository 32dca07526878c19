// Package ddtool is the command line shared by blkcat and blkwrite: dd
// operands and conventional flags, opening the input and output the way each
// tool is tuned to, signals, the dd report and the exit code. The tools
// differ only in their Profile.
package ddtool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/buildinfo"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/pipeio"
	"github.com/blkpipe/blkpipe/internal/progress"
	"golang.org/x/sys/unix"
)

// Exit codes, the same for both tools and shown in their --help.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitRefused     = 3 // blkwrite --allow refused the request
	ExitInterrupted = 130
)

// Profile says how a tool is tuned.
type Profile struct {
	Name string
	// Positional is the operand a bare path argument sets: "if" for
	// blkcat SRC, "of" for blkwrite DST.
	Positional string
	// Usage is the --help text.
	Usage string
	// ReadDirect opens a regular file or block device input with O_DIRECT
	// even when iflag=direct was not given (blkcat).
	ReadDirect bool
	// Sender accepts --frame and -z (blkcat).
	Sender bool
	// Receiver recognises framed input and accepts --raw, --framed,
	// --assume-zeroed and --no-verify (blkwrite).
	Receiver bool
	// Restrictable accepts --allow PATH (blkwrite as an ssh forced command).
	Restrictable bool
	// WriteGuard opens a block device output exclusively, with O_DIRECT,
	// refuses one too small for a sized input, and fdatasyncs it (blkwrite).
	WriteGuard bool
}

// ErrInterrupted is returned when SIGINT or SIGTERM stopped the copy.
var ErrInterrupted = errors.New("interrupted")

// ExitCode maps an error from Run to the tool's exit code. This is the one
// place the mapping lives.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ddargs.ErrUsage), errors.Is(err, errUsage):
		return ExitUsage
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, ErrRefused):
		return ExitRefused
	default:
		return ExitFailure
	}
}

var errUsage = errors.New("usage")

// usageError is a command-line error; its text is printed as is.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

// errReported marks an error whose message was already printed.
type errReported struct{ err error }

func (e *errReported) Error() string { return e.err.Error() }
func (e *errReported) Unwrap() error { return e.err }

// IsReported reports whether err's message was already printed, so main
// prints nothing more.
func IsReported(err error) bool {
	var r *errReported
	return errors.As(err, &r)
}

// Main runs the tool and returns its exit code; cmd/<tool>/main.go is only
// os.Exit(ddtool.Main(profile, os.Args[1:])).
func Main(p Profile, args []string) int {
	if sigpipeInherited() {
		// Started with SIGPIPE ignored, as dd would be: a write to a
		// closed standard output then fails with EPIPE, reported as dd
		// reports it, instead of Go's runtime killing the tool silently.
		signal.Ignore(syscall.SIGPIPE)
	}
	usr1 := make(chan os.Signal, 16)
	signal.Notify(usr1, syscall.SIGUSR1)
	p.Name = progName(p.Name, os.Args[0])
	stderr := &stickyWriter{w: os.Stderr}
	err := Run(p, args, os.Stdin, os.Stdout, stderr, usr1)
	if interruptSignal(err) == os.Interrupt {
		// dd prints its statistics on SIGINT (Run did) and then dies of
		// the signal, so that a shell running it stops too: bash goes
		// on with a script whose child exited 130, but not with one
		// whose child SIGINT killed. Run has restored the default
		// action.
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		time.Sleep(time.Second) // the signal is asynchronous
	}
	if err != nil && err != flagHelp && err != flagVersion && !IsReported(err) {
		// dd prints the warnings of the operands it parsed before the
		// one it refuses ("bs=0x5": the zero multiplier, then "invalid
		// number").
		for _, w := range ddargs.Warnings(err) {
			fmt.Fprintf(os.Stderr, "%s: %s\n", p.Name, w)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
	}
	if err == flagHelp || err == flagVersion {
		return ExitOK
	}
	return stderr.exitCode(ExitCode(err))
}

var (
	flagHelp    = errors.New("help requested")
	flagVersion = errors.New("version requested")
)

// noValue are the flags that take no value: "--frame=0" is refused, as
// getopt_long refuses it, rather than read as --frame.
var noValue = map[string]bool{
	"h": true, "help": true, "version": true, "q": true, "quiet": true, "frame": true,
	"resume-point": true, "raw": true, "framed": true, "assume-zeroed": true, "no-verify": true,
}

// OperandsHelp lists the dd operands both tools accept, for their --help.
const OperandsHelp = `dd operands (GNU semantics, numbers take c w b kB K KiB MB M MiB ... and NxM):
  if= of= bs= ibs= obs= count= skip=/iseek= seek=/oseek= status=none|noxfer|progress
  conv=notrunc,sync,noerror,fsync,fdatasync,sparse,excl,nocreat  cbs=
  conv=ascii,ebcdic,ibm,block,unblock,lcase,ucase,swab (record by record, as dd)
  iflag=direct,fullblock,count_bytes,skip_bytes,nocache,dsync,sync
  oflag=direct,dsync,sync,seek_bytes,append,nocache
`

// Options are the parsed command line: dd operands and the tool's flags.
type Options struct {
	Ops *ddargs.Operands

	// blkcat: --frame, -z CODEC[:LEVEL]
	Frame bool
	Codec frame.Codec
	Level int

	// blkwrite: --raw, --framed, --assume-zeroed, --no-verify
	Raw, Framed, AssumeZeroed, NoVerify bool

	// blkcat: --sums[=BS] (block size, 0 off), --against SUMS, --resume TOKEN
	Sums    int
	Against string
	Resume  string
	// blkwrite: --resume-point
	ResumePoint bool
	// blkwrite DST rather than of=DST: blkpipe's own form, where an empty
	// input is refused instead of copied as dd copies it.
	BareTarget bool
}

// ParseArgs turns a command line into dd operands. It accepts dd's
// key=value operands, one bare path (the tool's Positional operand), "-" for
// standard input or output, and conventional flags: --bs N, --offset N,
// --length N, -q, --help. "--" ends the flags.
func ParseArgs(p Profile, args []string) (*Options, error) {
	opt := &Options{}
	var operands []string
	var conv []string // conventional flags turned into operands, applied last
	positional, havePositional := "", false
	flagsDone := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !flagsDone && a == "--" {
			flagsDone = true
			continue
		}
		if !flagsDone && strings.HasPrefix(a, "-") && a != "-" {
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			needVal := func() (string, error) {
				if hasVal {
					return val, nil
				}
				if i+1 >= len(args) {
					return "", &usageError{fmt.Sprintf("option '%s' needs a value", a)}
				}
				i++
				return args[i], nil
			}
			if hasVal && noValue[name] {
				return nil, &usageError{fmt.Sprintf("option '%s' doesn't allow an argument", strings.SplitN(a, "=", 2)[0])}
			}
			switch name {
			case "h", "help":
				return nil, flagHelp
			case "version":
				return nil, flagVersion
			case "q", "quiet":
				conv = append(conv, "status=none")
			case "bs":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				conv = append(conv, "bs="+v)
			case "offset":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				if p.Positional == "if" {
					conv = append(conv, "skip="+v, "iflag=skip_bytes")
				} else {
					conv = append(conv, "seek="+v, "oflag=seek_bytes")
				}
			case "length":
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				conv = append(conv, "count="+v, "iflag=count_bytes")
			case "frame":
				if !p.Sender {
					return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
				}
				opt.Frame = true
			case "z", "compress":
				if !p.Sender {
					return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
				}
				v, err := needVal()
				if err != nil {
					return nil, err
				}
				c, level, err := frame.ParseCodec(v)
				if err != nil {
					return nil, &usageError{fmt.Sprintf("invalid -z value '%s': %v", v, err)}
				}
				opt.Frame, opt.Codec, opt.Level = true, c, level
			case "sums", "against", "resume":
				if !p.Sender {
					return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
				}
				var err error
				switch name {
				case "sums":
					opt.Sums, err = parseSumsBS(val)
				case "against":
					opt.Against, err = needVal()
					if err == nil && opt.Against == "" {
						err = &usageError{"--against needs SUMS: a file, or - for standard input"}
					}
				case "resume":
					// An empty token is what "$(ssh backup blkwrite
					// --resume-point DST)" gives when there is nothing to
					// resume: refuse it, or blkcat would send a raw,
					// unverified copy where a framed one was asked for.
					opt.Resume, err = needVal()
					if err == nil && opt.Resume == "" {
						err = &usageError{"invalid --resume token '': want STREAMID:OFFSET:SIZE:SAMPLE as printed by blkwrite --resume-point (it prints none when there is nothing to resume)"}
					}
				}
				if err != nil {
					return nil, err
				}
			case "resume-point":
				if !p.Receiver {
					return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
				}
				opt.ResumePoint = true
			case "raw", "framed", "assume-zeroed", "no-verify":
				if !p.Receiver {
					return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
				}
				switch name {
				case "raw":
					opt.Raw = true
				case "framed":
					opt.Framed = true
				case "assume-zeroed":
					opt.AssumeZeroed = true
				case "no-verify":
					opt.NoVerify = true
				}
			default:
				return nil, &usageError{fmt.Sprintf("unknown option '%s' (see --help)", a)}
			}
			continue
		}
		if strings.Contains(a, "=") {
			operands = append(operands, a)
			continue
		}
		if havePositional {
			return nil, &usageError{fmt.Sprintf("unexpected argument '%s': only one %s may be given ('%s' was the first)", a, map[string]string{"if": "input", "of": "output"}[p.Positional], positional)}
		}
		positional, havePositional = a, true
	}
	if havePositional {
		for _, o := range operands {
			if strings.HasPrefix(o, p.Positional+"=") {
				return nil, &usageError{fmt.Sprintf("'%s' and %s= both name the %s; give one", positional, p.Positional, map[string]string{"if": "input", "of": "output"}[p.Positional])}
			}
		}
		if positional != "-" {
			// Through ddargs as if= or of=, so the path gets every check
			// dd makes on the operand (an empty name, seek= too large to
			// truncate to).
			operands = append([]string{p.Positional + "=" + positional}, operands...)
			opt.BareTarget = p.Positional == "of"
		}
	}
	ops, err := ddargs.Parse(append(operands, conv...))
	if err != nil {
		return nil, err
	}
	opt.Ops = ops
	if opt.Raw && opt.Framed {
		return nil, &usageError{"--raw and --framed cannot be combined"}
	}
	if opt.Frame {
		switch {
		case ops.Seek != 0:
			return nil, &usageError{"--frame cannot be combined with seek= (the receiver places the data)"}
		case ops.Conv.Sparse:
			return nil, &usageError{"--frame cannot be combined with conv=sparse (zero blocks are sent as ZERO records)"}
		case ops.OFlag.Direct:
			return nil, &usageError{"--frame cannot be combined with oflag=direct"}
		}
	}
	if err := checkDeltaOptions(opt); err != nil {
		return nil, err
	}
	return opt, nil
}

// Run is the whole tool with its real world passed in: arguments, standard
// streams, and a channel of SIGUSR1 notifications.
func Run(p Profile, args []string, stdin, stdout *os.File, stderr io.Writer, usr1 <-chan os.Signal) (err error) {
	if p.Restrictable {
		var allows, rest []string
		for i := 0; i < len(args); i++ {
			switch {
			case args[i] == "--allow" && i+1 < len(args):
				allows = append(allows, args[i+1])
				i++
			case strings.HasPrefix(args[i], "--allow="):
				allows = append(allows, strings.TrimPrefix(args[i], "--allow="))
			case args[i] == "--allow":
				return &usageError{"option '--allow' needs a value"}
			default:
				rest = append(rest, args[i])
			}
		}
		if len(allows) > 0 {
			orig, haveSSH := os.LookupEnv("SSH_ORIGINAL_COMMAND")
			var err error
			if args, err = restrict(p, allows, rest, orig, haveSSH); err != nil {
				return err
			}
		}
	}
	opt, err := ParseArgs(p, args)
	if err == flagHelp {
		fmt.Fprint(stdout, p.Usage)
		return flagHelp
	}
	if err == flagVersion {
		fmt.Fprintln(stdout, buildinfo.Line(p.Name))
		return flagVersion
	}
	if err != nil {
		return err
	}
	ops := opt.Ops
	if opt.ResumePoint {
		return printResumePoint(opt, stdout)
	}

	ctx, stop, caught := signalContext()
	defer stop()
	defer func() {
		if errors.Is(err, ErrInterrupted) {
			if s := caught(); s != nil {
				err = &interruptedError{sig: s, err: err}
			}
		}
	}()

	level := map[ddargs.Status]progress.Level{
		ddargs.StatusDefault:  progress.LevelDefault,
		ddargs.StatusNone:     progress.LevelNone,
		ddargs.StatusNoxfer:   progress.LevelNoxfer,
		ddargs.StatusProgress: progress.LevelProgress,
	}[ops.Status]
	rep := progress.NewDD(stderr, p.Name, level)
	for _, w := range ops.Warnings {
		rep.Diagnose(w)
	}

	in, err := openInput(p, ops, stdin, rep)
	if err != nil {
		return err
	}
	defer in.F.Close()
	var start time.Time // of dd's clock, when not after opening the output
	if p.Receiver {
		// Waiting for the first bytes is part of dd's copy: its clock
		// runs and SIGUSR1 reports "0+0 records in" meanwhile.
		start = time.Now()
		rep.Restart(start)
		stopReports := reportOnSignal(rep, usr1)
		var framed, empty, cut bool
		err := interruptible(ctx, func() (err error) {
			framed, empty, cut, err = detectFramed(in, int(ops.IBS))
			return err
		})
		stopReports()
		if err == ErrInterrupted {
			rep.Report(time.Now())
			return err
		}
		if err != nil { // never: read errors are left for the copy to report
			return &ddcopy.Error{Msg: "error reading " + ddcopy.Quote(in.Name), Err: err}
		}
		if empty && opt.BareTarget {
			// `ssh host blkcat ... | blkwrite DST` whose sender failed
			// before its first byte: dd would truncate a file and report
			// success.
			return fmt.Errorf("%s is empty (did the sender fail?): %s was left as it was; of=%s copies an empty input as dd does",
				ddcopy.Quote(in.Name), ddcopy.Quote(ops.Of), ops.Of)
		}
		if cut && !opt.Raw && (opt.BareTarget || opt.Framed) {
			// The same for a sender that died in its first write: the
			// few bytes are a framed stream's start, not data.
			return fmt.Errorf("%s ends inside a framed stream's header (did the sender fail?): %s was left as it was; --raw copies it as data",
				ddcopy.Quote(in.Name), ddcopy.Quote(outputName(ops)))
		}
		framed = framed && !opt.Raw
		if opt.Framed && !framed {
			return fmt.Errorf("%s is not a framed stream (no blkpipe header); use --raw for raw data", ddcopy.Quote(in.Name))
		}
		if framed && ops.Text.Active() {
			return framedTextError(in.Name)
		}
		if framed {
			return runFramed(ctx, p, opt, in, stdout, rep, usr1)
		}
	}
	out, err := openOutput(p, ops, stdout)
	if err != nil {
		return err
	}
	defer out.F.Close()

	c := &ddcopy.Copier{P: params(ops), In: *in, Out: *out, R: rep}
	snd, err := newSender(ctx, opt, c, stdin)
	if err == ErrInterrupted {
		rep.Report(time.Now())
		return err
	}
	if err != nil {
		return err
	}
	if snd != nil {
		c.Sink = snd.sink
		// A frame writer is lent the read buffers (full blocks are sent
		// from them, not copied), so the ring is the default 6 chunks:
		// 3 left the reads waiting for buffers in flight downstream.
	}
	if p.WriteGuard {
		if err := guardSize(c); err != nil {
			return err
		}
		c.OnWriteError = func(err error, written int64) error {
			if fi, serr := out.F.Stat(); serr == nil && fi.Mode().IsRegular() && errors.Is(err, unix.ENOSPC) {
				// A file grows: its file system is what ran out.
				return fmt.Errorf("%w\n%s: the file system holding %s is full: %d bytes landed on it, the rest did not fit", err, p.Name, ddcopy.Quote(out.Name), written)
			}
			if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG) {
				return fmt.Errorf("%w\n%s: target is smaller than the input: %d bytes landed on %s, the rest did not fit", err, p.Name, written, ddcopy.Quote(out.Name))
			}
			return err
		}
	}

	defer reportOnSignal(rep, usr1)()

	if start.IsZero() {
		start = time.Now()
	}
	rep.Restart(start)
	rep.ScheduleFrom(processStart) // ddhabits.go
	result := make(chan error, 1)
	go func() {
		if snd != nil {
			// The copy's writer goroutine feeds the sender, whose SHA-256
			// (or block digests) is the one serial stage: keeping it on one
			// thread, which no other goroutine shares, made blkcat --frame
			// 0.86-0.88x the wall time (14 and 8 alternating pairs) and
			// left -z lz4 and -z zstd as they were. The same for the
			// receiver's verifying goroutine slowed a delta pipeline.
			runtime.LockOSThread()
		}
		err := c.Run(ctx)
		if snd != nil {
			err = snd.finish(err)
		}
		result <- err
	}()
	select {
	case err = <-result:
	case <-ctx.Done():
		err = ErrInterrupted
	}
	if err != nil && err != ErrInterrupted {
		rep.Diagnose(err.Error())
		err = &errReported{err}
	}
	if err == nil && out.F != stdout {
		if cerr := out.F.Close(); cerr != nil {
			err = &ddcopy.Error{Msg: "closing output file " + ddcopy.Quote(out.Name), Err: cerr}
			rep.Diagnose(err.Error())
			err = &errReported{err}
		}
	}
	rep.Report(time.Now())
	return err
}

// outputName is how messages name the target: of=, or standard output.
func outputName(ops *ddargs.Operands) string {
	if ops.Of == "" {
		return "standard output"
	}
	return ops.Of
}

// interruptible runs f, which reads the input before anything is written,
// and returns its error, or ErrInterrupted as soon as SIGINT or SIGTERM
// cancels ctx: a receiver waiting for its first bytes from a stalled
// sender must stop when told to, as dd does, and not only once the input
// ends. f is then left blocked in its read; nothing uses the input after.
func interruptible(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ErrInterrupted
	}
}

// reportOnSignal prints dd's report on every SIGUSR1 until the returned
// function is called.
func reportOnSignal(rep *progress.DD, usr1 <-chan os.Signal) func() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-usr1:
				rep.Report(time.Now())
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// signalContext is cancelled by SIGINT or SIGTERM unless the signal was
// ignored when the tool started (as dd checks SIG_IGN). caught returns the
// signal that cancelled it, or nil. stop restores the signals' default
// action.
func signalContext() (ctx context.Context, stop func(), caught func() os.Signal) {
	var sigs []os.Signal
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	if len(sigs) > 0 {
		signal.Notify(ch, sigs...)
	}
	var got atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-ch:
			got.Store(s)
			cancel()
		case <-ctx.Done():
		}
	}()
	stop = func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
	caught = func() os.Signal {
		s, _ := got.Load().(os.Signal)
		return s
	}
	return ctx, stop, caught
}

// interruptedError is ErrInterrupted with the signal that caused it.
type interruptedError struct {
	sig os.Signal
	err error
}

func (e *interruptedError) Error() string { return e.err.Error() }
func (e *interruptedError) Unwrap() error { return e.err }

// interruptSignal returns the signal that interrupted the run err ended,
// or nil.
func interruptSignal(err error) os.Signal {
	var ie *interruptedError
	if errors.As(err, &ie) {
		return ie.sig
	}
	return nil
}

// params resolves dd operands into the engine's parameters.
func params(o *ddargs.Operands) ddcopy.Params {
	p := ddcopy.Params{
		IBS: int(o.IBS), OBS: int(o.OBS), Reblock: o.BS == 0 || o.Text.Active(), Text: o.Text,
		Count: -1,
		Sync:  o.Conv.Sync, Noerror: o.Conv.Noerror, Sparse: o.Conv.Sparse,
		Fullblock: o.IFlag.Fullblock, Fsync: o.Conv.Fsync, Fdatasync: o.Conv.Fdatasync,
		Direct: o.IFlag.Direct || o.OFlag.Direct,
	}
	p.Skip, p.SkipTail = o.SkipSplit()
	p.Seek, p.SeekTail = o.SeekSplit()
	if o.Count >= 0 {
		p.Count, p.CountTail = o.CountSplit()
	}
	return p
}

// openFlags maps iflag=/oflag= flags that are open(2) flags.
func openFlags(f ddargs.Flags) int {
	fl := 0
	for _, m := range []struct {
		on   bool
		flag int
	}{
		{f.Dsync, unix.O_DSYNC}, {f.Sync, unix.O_SYNC}, {f.Append, unix.O_APPEND},
		{f.NoATime, unix.O_NOATIME}, {f.NoFollow, unix.O_NOFOLLOW},
		{f.NoCtty, unix.O_NOCTTY}, {f.NonBlock, unix.O_NONBLOCK},
	} {
		if m.on {
			fl |= m.flag
		}
	}
	return fl
}

// openNonblock opens path with O_NONBLOCK, as dd does for iflag=nonblock,
// so that a read of a FIFO or terminal with nothing to read fails with
// EAGAIN as dd's does ("error reading 'fifo': Resource temporarily
// unavailable"). os.OpenFile hands such a file to Go's poller, whose reads
// wait for data instead; a descriptor that is blocking when os.NewFile
// sees it stays out of the poller, so O_NONBLOCK is turned back on after.
func openNonblock(path string, flag int) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return f, nil
}

// setFdFlags is dd's set_fd_flags: the iflag=/oflag= flags of standard
// input or output, which dd does not open, are added with fcntl F_SETFL,
// where Linux honours O_APPEND, O_NOATIME and O_NONBLOCK (and O_DIRECT,
// which blkpipe leaves to its own aligned I/O). So oflag=append appends
// to a file on "1<>file", and iflag=nonblock makes a read of an empty pipe
// fail with EAGAIN, as dd's does.
func setFdFlags(f *os.File, fl ddargs.Flags, name string) error {
	add := 0
	for _, m := range []struct {
		on   bool
		flag int
	}{{fl.Append, unix.O_APPEND}, {fl.NoATime, unix.O_NOATIME}, {fl.NonBlock, unix.O_NONBLOCK}} {
		if m.on {
			add |= m.flag
		}
	}
	if add == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			var old int
			if old, err = unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil && old|add != old {
				_, err = unix.FcntlInt(fd, unix.F_SETFL, old|add)
			}
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		return &ddcopy.Error{Msg: "setting flags for " + ddcopy.Quote(name), Err: err}
	}
	return nil
}

// openInput opens if= (or takes standard input) and finds out what it is.
func openInput(p Profile, o *ddargs.Operands, stdin *os.File, rep *progress.DD) (*ddcopy.Input, error) {
	in := &ddcopy.Input{Name: "standard input", Size: -1, Nocache: o.IFlag.Nocache}
	if o.If == "" {
		in.F = stdin
		if err := setFdFlags(stdin, o.IFlag, in.Name); err != nil {
			return nil, err
		}
	} else {
		in.Name = o.If
		flag := os.O_RDONLY | openFlags(o.IFlag)
		var err error
		if fi, serr := os.Stat(o.If); o.IFlag.NonBlock && serr == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0 {
			in.F, err = openNonblock(o.If, flag)
		} else if o.IFlag.Direct || p.ReadDirect {
			in.F, in.Direct, err = blockdev.OpenDirect(o.If, flag, 0)
			in.UserDirect = o.IFlag.Direct
			if err == nil && !in.Direct && o.IFlag.Direct {
				rep.Diagnose(fmt.Sprintf("warning: %s does not support O_DIRECT; reading through the page cache", ddcopy.Quote(o.If)))
			}
		} else {
			in.F, err = os.OpenFile(o.If, flag, 0)
		}
		if err != nil {
			return nil, &ddcopy.Error{Msg: "failed to open " + ddcopy.Quote(o.If), Err: err}
		}
	}
	fi, err := in.F.Stat()
	if err != nil {
		return nil, &ddcopy.Error{Msg: "cannot fstat " + ddcopy.Quote(in.Name), Err: err}
	}
	// A regular file of size 0 may be a /proc or sysfs file whose size
	// says nothing (dd's usable_st_size): read it as a stream.
	if fi.Mode().IsRegular() && fi.Size() > 0 || fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		if size, err := blockdev.Size(in.F); err == nil {
			in.Seekable, in.Size = true, size
		}
	}
	if in.Direct {
		if !in.Seekable {
			blockdev.SetDirect(in.F, false)
			in.Direct = false
		} else {
			in.Align = blockdev.DirectAlign(in.F)
		}
	}
	if pipeio.IsPipe(in.F) {
		pipeio.Grow(in.F, pipeio.DefaultPipeSize)
	}
	// dd allocates its buffers after opening both files and dies when it
	// cannot ("memory exhausted by input buffer of size ..."); the
	// output is not opened yet here, so a bs= too large for the machine
	// leaves the target as it was. count=0 copies nothing and needs no
	// buffer, unless a skip must read.
	skipRecords, skipBytes := o.SkipSplit()
	if o.Count != 0 || (skipRecords != 0 || skipBytes != 0) && !in.Seekable {
		if err := ddcopy.CheckMemory(params(o), *in, ddcopy.Output{}); err != nil {
			if in.F != stdin {
				in.F.Close()
			}
			return nil, err
		}
	}
	return in, nil
}

// openOutput opens of= as dd does (create, truncate unless seek= or
// conv=notrunc, O_EXCL for conv=excl) or takes standard output.
func openOutput(p Profile, o *ddargs.Operands, stdout *os.File) (*ddcopy.Output, error) {
	out := &ddcopy.Output{Name: "standard output", Nocache: o.OFlag.Nocache, UserDirect: o.OFlag.Direct}
	if o.Of == "" {
		out.F = stdout
		if err := setFdFlags(stdout, o.OFlag, out.Name); err != nil {
			return nil, err
		}
		if pipeio.IsPipe(out.F) {
			pipeio.Grow(out.F, pipeio.DefaultPipeSize)
		}
		return out, nil
	}
	out.Name = o.Of
	flag := openFlags(o.OFlag)
	if !o.Conv.Nocreat {
		flag |= os.O_CREATE
		if p.WriteGuard {
			if err := refuseNewDevFile(o.Of); err != nil {
				return nil, err
			}
		}
	}
	if o.Conv.Excl {
		flag |= os.O_EXCL
	}
	seekRecords, seekBytes := o.SeekSplit()
	if seekRecords == 0 && !o.Conv.Notrunc {
		flag |= os.O_TRUNC
	}
	isBlock := false
	if fi, err := os.Stat(o.Of); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		isBlock = true
	}
	// blkwrite writes with O_DIRECT unasked, aligned from the offset it
	// starts at; with O_APPEND every write lands at the end of the file,
	// wherever that is, so only oflag=direct (the user's choice, with
	// dd's result) turns it on there.
	implicitDirect := p.WriteGuard && !o.OFlag.Append
	open := func(mode int) (*os.File, bool, error) {
		switch {
		case isBlock && p.WriteGuard:
			f, err := blockdev.OpenExclusive(o.Of, mode|flag)
			if err != nil {
				return nil, false, err
			}
			return f, (o.OFlag.Direct || implicitDirect) && blockdev.SetDirect(f, true) == nil, nil
		case o.OFlag.Direct || implicitDirect:
			return blockdev.OpenDirect(o.Of, mode|flag, 0o666)
		default:
			f, err := os.OpenFile(o.Of, mode|flag, 0o666)
			return f, false, err
		}
	}
	var err error
	// dd opens read-write when it may need to read to satisfy seek=.
	if seekRecords != 0 || seekBytes != 0 {
		out.F, out.Direct, err = open(os.O_RDWR)
	}
	if out.F == nil {
		out.F, out.Direct, err = open(os.O_WRONLY)
	}
	if err != nil {
		if errors.Is(err, blockdev.ErrInUse) {
			return nil, err
		}
		return nil, &ddcopy.Error{Msg: "failed to open " + ddcopy.Quote(o.Of), Err: err}
	}
	if seekRecords != 0 && !o.Conv.Notrunc {
		// ddargs refused a seek= whose offset does not fit an off_t
		// ("offset too large"), as dd does before opening.
		size, _ := params(o).SeekOffset()
		if fi, err := out.F.Stat(); err == nil && (fi.Mode().IsRegular() || fi.IsDir()) {
			if err := out.F.Truncate(size); err != nil {
				out.F.Close()
				return nil, &ddcopy.Error{Msg: fmt.Sprintf("failed to truncate to %d bytes in output file %s", size, ddcopy.Quote(o.Of)), Err: err}
			}
		}
	}
	if out.Direct {
		out.Align = blockdev.DirectAlign(out.F)
	}
	if isBlock && p.WriteGuard {
		out.Datasync = true
	}
	return out, nil
}

// guardSize refuses, before anything is written, a block device target
// that cannot hold an input whose size is known. Offsets dd cannot seek
// to (beyond an off_t, or past the end of the device) are left to the
// copy, which fails on them with dd's "cannot skip" or "cannot seek".
func guardSize(c *ddcopy.Copier) error {
	in := streamSize(c)
	if in < 0 {
		return nil
	}
	isBlock, err := blockdev.IsBlockDevice(c.Out.F)
	if err != nil || !isBlock {
		return nil
	}
	devSize, err := blockdev.Size(c.Out.F)
	if err != nil {
		return nil
	}
	start, ok := c.P.SeekOffset()
	if !ok || start > devSize {
		return nil
	}
	if in > devSize-start {
		return fmt.Errorf("target is smaller than the input: %s holds %d bytes, the input needs %d bytes from offset %d; nothing was written",
			ddcopy.Quote(c.Out.Name), devSize, in, start)
	}
	return nil
}
