package target

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/blkpipe/blkpipe/internal/ddmsg"

	"golang.org/x/sys/unix"
)

// refuseNewDevFile returns an error when opening path with O_CREAT would
// make a new regular file among the device nodes of /dev. On a backup host
// where the volume is not active (after a reboot, before vgchange -ay) or
// its name is mistyped, `ssh backup blkwrite /dev/vg1/data` would otherwise
// write the whole copy into devtmpfs, in RAM, print "verified" and exit 0,
// and the copy would be gone at the next boot. dd creates such a file;
// blkwrite, guarded for devices, does not. A directory below /dev that is
// another file system (/dev/shm) is not /dev's and may get new files; an
// existing file, or one whose state cannot be read, is left to open.
func refuseNewDevFile(path string) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil || !strings.HasPrefix(abs, "/dev/") {
		return nil
	}
	var dev, dir unix.Stat_t
	if unix.Stat("/dev", &dev) != nil || unix.Stat(filepath.Dir(abs), &dir) != nil || dev.Dev != dir.Dev {
		return nil
	}
	return fmt.Errorf("%s does not exist (is the volume active? is the name right?); blkwrite does not create files in /dev",
		ddmsg.Quote(path))
}
