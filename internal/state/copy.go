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
	// FS names a file's file system in a way that survives a remount
	// (see ID.FS); "" for a block device, an older record, or a file
	// system that gives no such name.
	FS string
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

// ID is the identity of an open file or block device, as Identify reads
// it and a Copy records it.
type ID struct {
	// Dev and Ino are st_rdev and 0 for a block device, st_dev and
	// st_ino for a file.
	Dev, Ino uint64
	// FS is, for a file, a name of its file system that unlike st_dev
	// stays the same when it is mounted again (fsName: f_fsid, or the
	// UUID on XFS); "" for a block device or where there is none.
	FS string
	// Stamp is what Copy.Stamp says.
	Stamp string
}

// Identify returns the identity a Copy records for the open file f: st_rdev
// and 0 for a block device, st_dev, st_ino and the file system's stable
// name (fsName) otherwise, and its Stamp.
func Identify(f *os.File) (ID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ID{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return ID{Dev: uint64(st.Rdev), Stamp: deviceStamp(uint64(st.Rdev))}, nil
	}
	id := ID{Dev: uint64(st.Dev), Ino: st.Ino, Stamp: "ctime:" + strconv.FormatInt(st.Ctim.Nano(), 10)}
	id.FS = fsName(int(f.Fd()))
	return id, nil
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

// ID is the identity c records.
func (c Copy) ID() ID { return ID{Dev: c.Dev, Ino: c.Ino, FS: c.FS, Stamp: c.Stamp} }

// SetID records id as c's identity.
func (c *Copy) SetID(id ID) { c.Dev, c.Ino, c.FS, c.Stamp = id.Dev, id.Ino, id.FS, id.Stamp }

// Same reports whether the identity of f (from Identify) is the one c
// recorded, stamp included: a target written since by anything else, or a
// record without a stamp, does not match. The device number must match
// too, unless both name the same file system by FS: a btrfs subvolume's
// st_dev changes at every mount, and a loop-mounted file system's may,
// while its name does not (and tells a btrfs snapshot, whose files keep
// their inode numbers and ctimes, from its origin).
func (c Copy) Same(id ID) bool {
	return c.Stamp != "" && c.Ino == id.Ino && c.Stamp == id.Stamp &&
		(c.Dev == id.Dev || c.FS != "" && c.FS == id.FS)
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
	if c.FS != "" {
		fmt.Fprintf(&b, "fs %s\n", c.FS)
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
		case "fs":
			c.FS = val
		default:
			err = ErrDamaged // a field this version does not know
		}
		if err != nil {
			return Copy{}, ErrDamaged
		}
	}
	// sums and fs are optional: fs is absent from records of older
	// versions, which then match by device number alone.
	if n := len(seen); n != 9+count(seen["sums"])+count(seen["fs"]) || c.Size < 0 {
		return Copy{}, ErrDamaged
	}
	return c, nil
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
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
