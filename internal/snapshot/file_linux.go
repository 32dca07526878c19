package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blkpipe/blkpipe/internal/atomicfile"
	"github.com/blkpipe/blkpipe/internal/blockdev"
	"golang.org/x/sys/unix"
)

// xattrOrigin marks a reflink clone made by snapctl; its value is the origin.
const xattrOrigin = "user.snapctl.origin"

// btrfsFirstFreeObjectID is the inode number of every btrfs subvolume's root
// directory (BTRFS_FIRST_FREE_OBJECTID).
const btrfsFirstFreeObjectID = 256

func onBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == unix.BTRFS_SUPER_MAGIC, nil
}

// mountPoint returns the mountpoint of the filesystem holding path (the
// longest mountpoint in /proc/self/mountinfo that contains it).
func mountPoint(path string) (string, error) {
	abs, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	abs, err = filepath.Abs(abs)
	if err != nil {
		return "", err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	best := "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// subvolumeOf returns the root of the btrfs subvolume holding path.
func subvolumeOf(path string) (string, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return "", &os.PathError{Op: "stat", Path: dir, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == btrfsFirstFreeObjectID {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s: no btrfs subvolume above it", path)
		}
		dir = parent
	}
}

// snapDir returns o.Dir or <mountpoint of origin>/.snapctl, created if
// missing; made tells it was.
func snapDir(origin string, o Options) (dir string, made bool, err error) {
	dir = o.Dir
	if dir != "" {
		// Absolute, as the snapshot's path and its state are: Remove
		// and cron's gc run from other directories.
		if dir, err = filepath.Abs(dir); err != nil {
			return "", false, err
		}
	} else {
		mp, err := mountPoint(origin)
		if err != nil {
			return "", false, fmt.Errorf("find the filesystem of %s: %w", origin, err)
		}
		dir = filepath.Join(mp, ".snapctl")
	}
	if exists(dir) {
		return dir, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create snapshot directory: %w", err)
	}
	return dir, true, nil
}

func (m *Manager) createFile(ctx context.Context, origin string, b Backend, o Options) (_ *Snapshot, err error) {
	origin, err = filepath.Abs(origin)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(origin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, ErrNotFound)
	}
	var subvol string
	base := filepath.Base(origin)
	if b == Btrfs {
		if ok, err := onBtrfs(origin); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("backend btrfs: %s is not on btrfs: %w", origin, ErrUnsupported)
		}
		if subvol, err = subvolumeOf(origin); err != nil {
			return nil, err
		}
		base = filepath.Base(subvol)
		if base == "/" {
			base = "root"
		}
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("backend reflink: %s is not a regular file: %w", origin, ErrUnsupported)
	}
	dir, made, err := snapDir(origin, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Nothing changed on failure: drop the directory if we made it.
		if made && err != nil {
			os.Remove(dir)
		}
	}()
	if err := os.MkdirAll(m.stateDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	name := o.Name
	if name == "" {
		name = defaultName(base, m.timeNow())
		for i := 2; exists(filepath.Join(dir, name)); i++ {
			name = fmt.Sprintf("%s_%d", defaultName(base, m.timeNow()), i)
		}
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	dest := filepath.Join(dir, name)
	if exists(dest) {
		return nil, fmt.Errorf("snapshot %s: %w", dest, ErrExists)
	}
	s := &Snapshot{Origin: origin, Backend: b, Fill: -1, Kept: o.Keep}
	if o.Owner > 0 {
		if s.OwnerStart, err = procStart(o.Owner); err != nil {
			return nil, fmt.Errorf("owner: %w", err)
		}
		s.Owner = o.Owner
	}
	snap, err := m.instant(ctx, origin, o, []string{dir, m.stateDir()}, func() (*Snapshot, error) {
		s.Created = m.timeNow().UTC()
		if b == Btrfs {
			if _, err := command(context.WithoutCancel(ctx), "btrfs", "subvolume", "snapshot", "-r", subvol, dest); err != nil {
				return nil, fmt.Errorf("snapshot subvolume %s: %w", subvol, err)
			}
			s.Subvolume = dest
			rel, err := filepath.Rel(subvol, origin)
			if err != nil {
				return nil, err
			}
			s.Path = filepath.Join(dest, rel)
			return s, nil
		}
		if err := reflink(dest, origin, fi.Mode().Perm()); err != nil {
			return nil, err
		}
		s.Path = dest
		return s, nil
	})
	if snap != nil {
		// Recorded even if a hook failed below, so that the removal
		// finds it.
		if serr := m.writeState(snap); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		if snap != nil {
			if rerr := m.removeFile(context.WithoutCancel(ctx), *snap); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	return snap, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// reflink clones origin to a new file dest with mode perm and marks it.
func reflink(dest, origin string, perm os.FileMode) (err error) {
	src, err := os.Open(origin)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("snapshot %s: %w", dest, ErrExists)
		}
		return err
	}
	defer func() {
		cerr := dst.Close()
		if err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dest)
		}
	}()
	if err := blockdev.Clone(dst, src); err != nil {
		if errors.Is(err, unix.EXDEV) {
			// The filesystem may well clone: the clone is just not
			// on it.
			return fmt.Errorf("clone %s into %s: not on the same filesystem (--dir must be on the filesystem of the origin): %w", origin, filepath.Dir(dest), err)
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			return fmt.Errorf("clone %s: %w (%v); use XFS made with reflink=1, or btrfs", origin, ErrNoReflink, err)
		}
		return fmt.Errorf("clone %s: %w", origin, err)
	}
	if err := unix.Fsetxattr(int(dst.Fd()), xattrOrigin, []byte(origin), 0); err != nil {
		return &os.PathError{Op: "setxattr " + xattrOrigin, Path: dest, Err: err}
	}
	return nil
}

// stateFile is where the state of the snapshot at path is kept.
func (m *Manager) stateFile(path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(m.stateDir(), hex.EncodeToString(sum[:8])+".json")
}

func (m *Manager) writeState(s *Snapshot) error {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(m.stateFile(s.Path), append(b, '\n')); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// findState returns the state of the file snapshot at path (or whose btrfs
// subvolume is path), if any.
func (m *Manager) findState(path string) (Snapshot, bool, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	b, err := os.ReadFile(m.stateFile(path))
	if errors.Is(err, os.ErrNotExist) {
		// The btrfs snapshot's subvolume, rather than the file in it?
		states, err := m.readStates()
		if err != nil {
			return Snapshot{}, false, err
		}
		for _, s := range states {
			if s.Subvolume != "" && s.Subvolume == path {
				return s, true, nil
			}
		}
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("read state: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, false, fmt.Errorf("read state %s: %w", m.stateFile(path), err)
	}
	return s, s.Path == path, nil
}

// readStates returns every state entry, oldest first.
func (m *Manager) readStates() ([]Snapshot, error) {
	paths, err := filepath.Glob(filepath.Join(m.stateDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var all []Snapshot
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read state: %w", err)
		}
		var s Snapshot
		if err := json.Unmarshal(b, &s); err != nil || s.Path == "" {
			continue // not ours
		}
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.Before(all[j].Created) })
	return all, nil
}

// listFile lists btrfs and reflink snapshots (backend "" for both) whose
// state entry and snapshot both exist.
func (m *Manager) listFile(b Backend) ([]Snapshot, error) {
	states, err := m.readStates()
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, s := range states {
		if (b == "" || s.Backend == b) && exists(s.Path) {
			out = append(out, s)
		}
	}
	return out, nil
}

// pruneState drops state entries whose snapshot is gone (removed by hand).
// One whose directory is missing too is kept: its filesystem may just not
// be mounted now, and without the entry the snapshot would be neither
// listed nor removable once it is back.
func (m *Manager) pruneState() {
	states, _ := m.readStates()
	for _, s := range states {
		target := s.Path
		if s.Subvolume != "" {
			target = s.Subvolume
		}
		if !exists(target) && exists(filepath.Dir(target)) {
			os.Remove(m.stateFile(s.Path))
		}
	}
}

// removeFile deletes a btrfs or reflink snapshot after checking its marks.
func (m *Manager) removeFile(ctx context.Context, s Snapshot) error {
	switch s.Backend {
	case Btrfs:
		var st unix.Stat_t
		if s.Subvolume == "" || (unix.Stat(s.Subvolume, &st) == nil && st.Ino != btrfsFirstFreeObjectID) {
			return fmt.Errorf("remove %s: not a btrfs subvolume: %w", s.Path, ErrNotOurs)
		}
		if exists(s.Subvolume) {
			if err := m.retryBusy(ctx, s.Path, func() error {
				_, err := command(context.WithoutCancel(ctx), "btrfs", "subvolume", "delete", s.Subvolume)
				return err
			}, func() string { return holdersOfPath(s.Subvolume) }); err != nil {
				return err
			}
		}
	case Reflink:
		if exists(s.Path) {
			v := make([]byte, 4096)
			n, err := unix.Getxattr(s.Path, xattrOrigin, v)
			if err != nil || string(v[:n]) != s.Origin {
				return fmt.Errorf("remove %s: no %s mark: %w", s.Path, xattrOrigin, ErrNotOurs)
			}
			if err := os.Remove(s.Path); err != nil {
				return fmt.Errorf("remove %s: %w", s.Path, err)
			}
		}
	default:
		return fmt.Errorf("remove %s: state names backend %q: %w", s.Path, s.Backend, ErrNotOurs)
	}
	if err := os.Remove(m.stateFile(s.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of %s: %w", s.Path, err)
	}
	return nil
}
