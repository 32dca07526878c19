package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A copy record is what blkwrite keeps about the last copy it verified on
// a target, next to the target's resume state: which source digest the
// target holds, how big, made by which stream, when, and the identity of
// the file or device it was written to. Beside it, with the same name and
// the extension ".b3map", lives the digest map (internal/digest.Map) of
// that state, when there is one.

// ErrDamaged is returned by LoadCopy for a record that does not parse or
// whose checksum does not match; it is never trusted.
var ErrDamaged = errors.New("damaged")

const copyMagic = "blkpipe-copy 1"

// Copy is the record of the last verified copy on a target.
type Copy struct {
	// Target is the path blkwrite was given, made absolute.
	Target string
	// Dev and Ino identify what Target named when the copy verified: for
	// a block device its st_rdev and Ino 0; for a file st_dev and st_ino.
	Dev, Ino uint64
	// Stamp changes whenever anything writes to the target: for a file
	// its ctime (which, unlike the mtime, no user can set back), for a
	// block device the boot id and the device's count of sectors written
	// (/sys/dev/block/MAJ:MIN/stat), taken right after the copy was made
	// durable. "" where neither can be read: such a record is never
	// trusted (Same is false).
	Stamp string
	// Size is the source's size: the target holds it from byte 0.
	Size int64
	// Alg ("blake3" or "sha256") and Digest (lower-case hex) are the
	// verified whole-source digest.
	Alg, Digest string
	// StreamID is the hex stream id of the stream that made the copy.
	StreamID string
	// Time is when the copy verified.
	Time time.Time
	// Sums is the CRC-32C (hex) of the kept block sums saved with the
	// copy (SaveSums), or "" when none were kept.
	Sums string
}

// CopyPath is the copy record file for target.
func (d Dir) CopyPath(target string) string {
	return d.file(target, ".copy")
}

// MapPath is where the digest map of target's last verified copy is kept.
func (d Dir) MapPath(target string) string {
	return d.file(target, ".b3map")
}

// Identify returns the identity a Copy records for the open file f: st_rdev
// and 0 for a block device, st_dev and st_ino otherwise, and its Stamp.
func Identify(f *os.File) (dev, ino uint64, stamp string, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, "", &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return uint64(st.Rdev), 0, deviceStamp(uint64(st.Rdev)), nil
	}
	return uint64(st.Dev), st.Ino, "ctime:" + strconv.FormatInt(st.Ctim.Nano(), 10), nil
}

// deviceStamp is "writes:BOOTID:SECTORS" for the block device rdev: the
// sectors written to it since it appeared, which any write moves on, in
// this boot (after a reboot or a re-attached loop device the count starts
// again, and the boot id or the count tells). "" if unreadable.
func deviceStamp(rdev uint64) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/stat", unix.Major(rdev), unix.Minor(rdev)))
	if err != nil {
		return ""
	}
	// Field 7 of the stat file is sectors written (Documentation/block/stat.rst).
	f := strings.Fields(string(b))
	if len(f) < 7 {
		return ""
	}
	return "writes:" + strings.TrimSpace(string(boot)) + ":" + f[6]
}

// Same reports whether the identity of f (from Identify) is the one c
// recorded, stamp included: a target written since by anything else, or a
// record without a stamp, does not match.
func (c Copy) Same(dev, ino uint64, stamp string) bool {
	return c.Stamp != "" && c.Dev == dev && c.Ino == ino && c.Stamp == stamp
}

func (c Copy) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", copyMagic)
	fmt.Fprintf(&b, "target %s\n", strconv.Quote(c.Target))
	fmt.Fprintf(&b, "dev %d\nino %d\nstamp %s\nsize %d\n", c.Dev, c.Ino, c.Stamp, c.Size)
	fmt.Fprintf(&b, "alg %s\ndigest %s\nstream %s\n", c.Alg, c.Digest, c.StreamID)
	fmt.Fprintf(&b, "time %s\n", c.Time.UTC().Format(time.RFC3339Nano))
	if c.Sums != "" {
		fmt.Fprintf(&b, "sums %s\n", c.Sums)
	}
	fmt.Fprintf(&b, "crc32c %08x\n", crc32.Checksum(b.Bytes(), crcTable))
	return b.Bytes()
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// parseCopy reads a record written by marshal; anything else is ErrDamaged.
func parseCopy(b []byte) (Copy, error) {
	var c Copy
	i := bytes.LastIndex(b, []byte("crc32c "))
	if i < 0 {
		return c, ErrDamaged
	}
	if fmt.Sprintf("crc32c %08x\n", crc32.Checksum(b[:i], crcTable)) != string(b[i:]) {
		return c, ErrDamaged
	}
	sc := bufio.NewScanner(bytes.NewReader(b[:i]))
	if !sc.Scan() || sc.Text() != copyMagic {
		return c, ErrDamaged
	}
	seen := map[string]bool{}
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || seen[key] {
			return c, ErrDamaged
		}
		seen[key] = true
		var err error
		switch key {
		case "target":
			c.Target, err = strconv.Unquote(val)
		case "dev":
			c.Dev, err = strconv.ParseUint(val, 10, 64)
		case "ino":
			c.Ino, err = strconv.ParseUint(val, 10, 64)
		case "stamp":
			c.Stamp = val
		case "size":
			c.Size, err = strconv.ParseInt(val, 10, 64)
		case "alg":
			c.Alg = val
		case "digest":
			c.Digest = val
		case "stream":
			c.StreamID = val
		case "time":
			c.Time, err = time.Parse(time.RFC3339Nano, val)
		case "sums":
			c.Sums = val
		default:
			err = ErrDamaged // a field this version does not know
		}
		if err != nil {
			return Copy{}, ErrDamaged
		}
	}
	if n := len(seen); n != 9 && !(n == 10 && seen["sums"]) || c.Size < 0 {
		return Copy{}, ErrDamaged
	}
	return c, nil
}

// LoadCopy reads target's copy record. It returns an error matching
// os.ErrNotExist when there is none, and one matching ErrDamaged (naming
// the file) when it cannot be trusted.
func (d Dir) LoadCopy(target string) (Copy, error) {
	return loadCopy(d.CopyPath(target), "copy record")
}

// loadCopy reads the record in the Copy format at path (a copy or a sent
// record, what): os.ErrNotExist when there is none, ErrDamaged naming
// the file when it cannot be trusted.
func loadCopy(path, what string) (Copy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Copy{}, err
	}
	c, err := parseCopy(b)
	if err != nil {
		return Copy{}, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return c, nil
}

// SaveCopy replaces the copy record of c.Target atomically (temp file,
// fsync, rename, fsync of the directory).
func (d Dir) SaveCopy(c Copy) error {
	return d.replace(d.CopyPath(c.Target), c.marshal())
}

// RemoveCopy removes target's copy record, digest map and kept sums; there being
// none is no error. blkwrite calls it before it first writes to a target,
// so a record never outlives the state it describes.
func (d Dir) RemoveCopy(target string) error {
	return remove(d.CopyPath(target), d.MapPath(target), d.SumsPath(target))
}

// SaveMap replaces target's digest map with b (a marshalled digest.Map)
// atomically.
func (d Dir) SaveMap(target string, b []byte) error {
	return d.replace(d.MapPath(target), b)
}
