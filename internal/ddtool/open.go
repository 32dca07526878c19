package ddtool

import (
	"fmt"
	"os"

	"github.com/blkpipe/blkpipe/internal/blockdev"
	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddmsg"
	"github.com/blkpipe/blkpipe/internal/pipeio"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/target"
	"golang.org/x/sys/unix"
)

// OpenFlags maps iflag=/oflag= flags that are open(2) flags.
func OpenFlags(f ddargs.Flags) int {
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
		return &ddmsg.Error{Msg: "setting flags for " + ddmsg.Quote(name), Err: err}
	}
	return nil
}

// OpenInput opens if= (or takes standard input) and finds out what it is.
// direct opens a regular file or block device with O_DIRECT even when
// iflag=direct was not given (blkcat). set tunes the copy whose buffers it
// checks it can have.
func OpenInput(o *ddargs.Operands, stdin *os.File, rep *progress.DD, direct bool, set Settings) (*ddcopy.Input, error) {
	in := &ddcopy.Input{Name: "standard input", Size: -1, Nocache: o.IFlag.Nocache}
	if o.If == "" {
		in.F = stdin
		if err := setFdFlags(stdin, o.IFlag, in.Name); err != nil {
			return nil, err
		}
	} else {
		in.Name = o.If
		flag := os.O_RDONLY | OpenFlags(o.IFlag)
		var err error
		if fi, serr := os.Stat(o.If); o.IFlag.NonBlock && serr == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0 {
			in.F, err = openNonblock(o.If, flag)
		} else if o.IFlag.Direct || direct {
			in.F, in.Direct, err = blockdev.OpenDirect(o.If, flag, 0)
			in.UserDirect = o.IFlag.Direct
			if err == nil && !in.Direct && o.IFlag.Direct {
				rep.Diagnose(fmt.Sprintf("warning: %s does not support O_DIRECT; reading through the page cache", ddmsg.Quote(o.If)))
			}
		} else {
			in.F, err = os.OpenFile(o.If, flag, 0)
		}
		if err != nil {
			return nil, &ddmsg.Error{Msg: "failed to open " + ddmsg.Quote(o.If), Err: err}
		}
	}
	fi, err := in.F.Stat()
	if err != nil {
		return nil, &ddmsg.Error{Msg: "cannot fstat " + ddmsg.Quote(in.Name), Err: err}
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
		c := &ddcopy.Copier{P: ddcopy.ParamsOf(o), In: *in}
		set.Tune(c)
		if err := c.CheckMemory(); err != nil {
			if in.F != stdin {
				in.F.Close()
			}
			return nil, err
		}
	}
	return in, nil
}

// OpenOutput opens of= as dd does (create, truncate unless seek= or
// conv=notrunc, O_EXCL for conv=excl) or takes standard output. guard is
// blkwrite's care for devices (see target.Spec.Guard), with O_DIRECT on
// unasked, and a block device too small for an input of size bytes (-1:
// unknown) refused before anything is written.
func OpenOutput(o *ddargs.Operands, stdout *os.File, guard bool, size int64) (*ddcopy.Output, error) {
	var checkSize func(devSize int64) error
	if guard {
		checkSize = func(devSize int64) error {
			start, ok := ddcopy.ParamsOf(o).SeekOffset()
			return target.GuardSize(OutputName(o), devSize, size, start, ok)
		}
	}
	if o.Of == "" {
		if err := setFdFlags(stdout, o.OFlag, "standard output"); err != nil {
			return nil, err
		}
		if pipeio.IsPipe(stdout) {
			pipeio.Grow(stdout, pipeio.DefaultPipeSize)
		}
		return target.Stdout(stdout, o.OFlag.Nocache, checkSize)
	}
	seekRecords, seekBytes := o.SeekSplit()
	// blkwrite writes with O_DIRECT unasked, aligned from the offset it
	// starts at; with O_APPEND every write lands at the end of the file,
	// wherever that is, so only oflag=direct (the user's choice, with
	// dd's result) turns it on there.
	out, err := target.Open(target.Spec{
		Path:       o.Of,
		Flags:      OpenFlags(o.OFlag),
		Create:     !o.Conv.Nocreat,
		Excl:       o.Conv.Excl,
		Trunc:      seekRecords == 0 && !o.Conv.Notrunc,
		TryRead:    seekRecords != 0 || seekBytes != 0, // dd opens read-write when it may need to read to satisfy seek=
		Direct:     o.OFlag.Direct || guard && !o.OFlag.Append,
		UserDirect: o.OFlag.Direct,
		Nocache:    o.OFlag.Nocache,
		Guard:      guard,
		CheckSize:  checkSize,
	})
	if err != nil {
		return nil, err
	}
	if seekRecords != 0 && !o.Conv.Notrunc {
		// ddargs refused a seek= whose offset does not fit an off_t
		// ("offset too large"), as dd does before opening.
		size, _ := ddcopy.ParamsOf(o).SeekOffset()
		if fi, err := out.F.Stat(); err == nil && (fi.Mode().IsRegular() || fi.IsDir()) {
			if err := out.F.Truncate(size); err != nil {
				out.F.Close()
				return nil, &ddmsg.Error{Msg: fmt.Sprintf("failed to truncate to %d bytes in output file %s", size, ddmsg.Quote(o.Of)), Err: err}
			}
		}
	}
	return out, nil
}
