package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// lvmTag marks the logical volumes snapctl made.
const lvmTag = "snapctl"

// ownerTagPrefix starts the tag snapctl_owner_PID_START of a snapshot that
// a snapctl run uses (Snapshot.Owner, Snapshot.OwnerStart).
const ownerTagPrefix = "snapctl_owner_"

// lvFields are the lvs columns snapctl reads, by name, from the JSON report.
const lvFields = "lv_name,vg_name,lv_path,lv_attr,segtype,origin,pool_lv,lv_tags,lv_time,lv_size,snap_percent,data_percent,metadata_percent,lv_snapshot_invalid,lv_kernel_major,lv_kernel_minor,vg_free,vg_size,vg_extent_size"

// lv is one row of `lvs --reportformat json --units b --nosuffix --binary`.
type lv struct {
	Name     string `json:"lv_name"`
	VG       string `json:"vg_name"`
	Path     string `json:"lv_path"`
	Attr     string `json:"lv_attr"`
	Segtype  string `json:"segtype"`
	Origin   string `json:"origin"`
	Pool     string `json:"pool_lv"`
	Tags     string `json:"lv_tags"`
	Time     string `json:"lv_time"`
	Size     string `json:"lv_size"`
	SnapPct  string `json:"snap_percent"`
	DataPct  string `json:"data_percent"`
	MetaPct  string `json:"metadata_percent"`
	Invalid  string `json:"lv_snapshot_invalid"`
	Major    string `json:"lv_kernel_major"`
	Minor    string `json:"lv_kernel_minor"`
	VGFree   string `json:"vg_free"`
	VGSize   string `json:"vg_size"`
	VGExtent string `json:"vg_extent_size"`
}

type lvsReport struct {
	Report []struct {
		LV []lv `json:"lv"`
	} `json:"report"`
}

// lvmArgs come first on every lvs call: JSON, sizes in bytes without
// suffix, binary fields as 0/1, and times as Unix seconds.
var lvmArgs = []string{"--reportformat", "json", "--units", "b", "--nosuffix", "--binary",
	"--config", `report/time_format="%s"`}

func isVGLV(s string) bool {
	return regexp.MustCompile(`^[A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+$`).MatchString(s)
}

// lvs runs lvs with the report options and returns the rows.
func lvs(ctx context.Context, args ...string) ([]lv, error) {
	out, err := command(ctx, "lvs", append(append(append([]string{}, lvmArgs...), "-o", lvFields), args...)...)
	if err != nil {
		return nil, err
	}
	var r lvsReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("parse lvs report: %w", err)
	}
	var all []lv
	for _, rep := range r.Report {
		all = append(all, rep.LV...)
	}
	return all, nil
}

// lvInfo returns the logical volume at path (/dev/vg/lv, /dev/mapper/…,
// or vg/lv).
func (m *Manager) lvInfo(ctx context.Context, path string) (lv, error) {
	rows, err := lvs(ctx, path)
	if err != nil {
		var ce *cmdError
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return lv{}, fmt.Errorf("%s: lvs not found (install lvm2): %w", path, ErrUnsupported)
		case errors.As(err, &ce) && strings.HasPrefix(path, "/dev/") && (strings.Contains(ce.Stderr, "not found") || strings.Contains(ce.Stderr, "Invalid path")):
			if fi, serr := os.Stat(path); serr == nil && fi.Mode()&os.ModeDevice != 0 {
				return lv{}, fmt.Errorf("%s is not an LVM logical volume: %w", path, ErrUnsupported)
			}
			return lv{}, fmt.Errorf("%s: %w", path, ErrNotFound)
		case errors.As(err, &ce) && (strings.Contains(ce.Stderr, "Failed to find") || strings.Contains(ce.Stderr, "not found")):
			return lv{}, fmt.Errorf("%s: %w", path, ErrNotFound)
		case errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid path"):
			return lv{}, fmt.Errorf("%s is not an LVM logical volume: %w", path, ErrUnsupported)
		}
		return lv{}, err
	}
	if len(rows) != 1 {
		return lv{}, fmt.Errorf("%s: lvs reported %d volumes, want 1: %w", path, len(rows), ErrNotFound)
	}
	return rows[0], nil
}

func lvBackend(l lv) Backend {
	if l.Segtype == "thin" {
		return LVMThin
	}
	return LVM
}

func (l lv) hasTag(t string) bool {
	for _, x := range strings.Split(l.Tags, ",") {
		if x == t {
			return true
		}
	}
	return false
}

// isSnapshot: a classic snapshot (attr s/S) or a thin one (has an origin).
func (l lv) isSnapshot() bool {
	return strings.HasPrefix(l.Attr, "s") || strings.HasPrefix(l.Attr, "S") || l.Origin != ""
}

func (l lv) invalid() bool {
	return l.Invalid == "1" || (len(l.Attr) > 4 && l.Attr[0] == 's' && l.Attr[4] == 'I') || strings.HasPrefix(l.Attr, "S")
}

// poolFill is how full a thin pool is: the fuller of its data and its
// metadata, since either running out stalls every thin volume in it.
func (l lv) poolFill() float64 {
	return max(pct(l.DataPct), pct(l.MetaPct))
}

func num(s string) uint64 {
	v, _ := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return v
}

func pct(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return -1
	}
	return v
}

// lvTime parses lv_time: Unix seconds, or lvm's default "%Y-%m-%d %T %z".
func lvTime(s string) time.Time {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC()
	}
	if t, err := time.Parse("2006-01-02 15:04:05 -0700", s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

// toSnapshot converts an lvs row; pools gives thin pools' data percent.
func (l lv) toSnapshot(pools map[string]float64) Snapshot {
	s := Snapshot{
		Path:    l.Path,
		Origin:  l.VG + "/" + l.Origin,
		Backend: lvBackend(l),
		Created: lvTime(l.Time),
		VG:      l.VG,
		LV:      l.Name,
		Pool:    l.Pool,
		Fill:    -1,
		Invalid: l.invalid(),
	}
	if s.Path == "" {
		s.Path = "/dev/" + l.VG + "/" + l.Name
	}
	s.Kept = l.hasTag(keptTag)
	for _, t := range strings.Split(l.Tags, ",") {
		if rest, ok := strings.CutPrefix(t, ownerTagPrefix); ok {
			pid, start, _ := strings.Cut(rest, "_")
			s.Owner, _ = strconv.Atoi(pid)
			s.OwnerStart, _ = strconv.ParseUint(start, 10, 64)
		}
	}
	if s.Backend == LVM {
		s.Size = num(l.Size)
		s.Fill = pct(l.SnapPct)
		if s.Fill < 0 {
			s.Fill = pct(l.DataPct)
		}
		if s.Invalid {
			s.Fill = 100
		}
	} else if p, ok := pools[l.VG+"/"+l.Pool]; ok {
		s.Fill = p
	}
	return s
}

func (m *Manager) listLVM(ctx context.Context) ([]Snapshot, error) {
	if _, err := exec.LookPath("lvs"); err != nil {
		return nil, nil // no LVM here, so no LVM snapshots
	}
	rows, err := lvs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list logical volumes: %w", err)
	}
	pools := map[string]float64{}
	for _, r := range rows {
		if r.Segtype == "thin-pool" {
			pools[r.VG+"/"+r.Name] = r.poolFill()
		}
	}
	var out []Snapshot
	for _, r := range rows {
		if r.hasTag(lvmTag) && r.isSnapshot() {
			out = append(out, r.toSnapshot(pools))
		}
	}
	return out, nil
}

// Status returns s with Fill, Invalid and Size read afresh.
func (m *Manager) Status(ctx context.Context, s Snapshot) (Snapshot, error) {
	if s.Backend != LVM && s.Backend != LVMThin {
		return s, nil
	}
	l, err := m.lvInfo(ctx, s.VG+"/"+s.LV)
	if err != nil {
		return s, err
	}
	pools := map[string]float64{}
	if l.Pool != "" {
		p, err := m.lvInfo(ctx, l.VG+"/"+l.Pool)
		if err != nil {
			return s, err
		}
		pools[l.VG+"/"+l.Pool] = p.poolFill()
	}
	return l.toSnapshot(pools), nil
}

// CheckSize returns the error Create would give for Options.Size, whatever
// the origin: it checks the syntax ("" is the default).
func CheckSize(size string) error {
	if size == "" {
		return nil
	}
	_, _, err := cowSize(size, lv{})
	return err
}

var sizeRE = regexp.MustCompile(`^([0-9]+)%(FREE|ORIGIN|VG)?$`)

// cowSize turns --size into lvcreate arguments and the bytes they ask for.
func cowSize(size string, origin lv) (args []string, want uint64, err error) {
	if size == "" {
		size = "100%FREE"
	}
	free, vgsize := num(origin.VGFree), num(origin.VGSize)
	if m := sizeRE.FindStringSubmatch(strings.ToUpper(size)); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		of := m[2]
		if of == "" {
			of = "ORIGIN"
		}
		if n == 0 || (n > 100 && of != "ORIGIN") {
			return nil, 0, fmt.Errorf("--size %s: percentage out of range", size)
		}
		switch of {
		case "FREE":
			want = free * n / 100
		case "ORIGIN":
			want = num(origin.Size) * n / 100
		case "VG":
			want = vgsize * n / 100
		}
		return []string{"-l", fmt.Sprintf("%d%%%s", n, of)}, want, nil
	}
	b, err := humanize.ParseBytes(strings.TrimSuffix(strings.TrimSuffix(size, "b"), "B") + iecSuffix(size))
	if err != nil || b == 0 {
		return nil, 0, fmt.Errorf("--size %q: want N%%FREE, N%%ORIGIN, N%% or a size like 512M", size)
	}
	b = (b + 511) &^ 511
	return []string{"-L", fmt.Sprintf("%db", b)}, b, nil
}

// iecSuffix makes LVM's units (k, m, g, t: powers of 1024) explicit for
// humanize, which reads "1M" as 10^6.
func iecSuffix(s string) string {
	s = strings.TrimRight(s, "bB")
	if s == "" {
		return ""
	}
	switch s[len(s)-1] {
	case 'k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'p', 'P':
		return "iB"
	}
	return ""
}

// createLVM snapshots the logical volume l (origin as the user named it).
func (m *Manager) createLVM(ctx context.Context, origin string, l lv, b Backend, o Options) (*Snapshot, error) {
	if l.isSnapshot() {
		of := l.Origin
		return nil, fmt.Errorf("%s/%s is a snapshot of %s: %w; snapshot the origin instead", l.VG, l.Name, of, ErrIsSnapshot)
	}
	if l.Segtype == "thin-pool" || strings.HasPrefix(l.Segtype, "cache") || l.Segtype == "vdo-pool" {
		return nil, fmt.Errorf("%s/%s is a %s, not a volume with data: %w", l.VG, l.Name, l.Segtype, ErrUnsupported)
	}
	// snapctl's snapshots already in the volume group: most likely left
	// by a run that was killed or crashed. They cost space and slow every
	// write to their origin, so the user hears of them. Best effort: a
	// failed lvs here only loses the hint.
	var prior []Snapshot
	if all, err := m.listLVM(ctx); err == nil {
		for _, s := range all {
			if s.VG == l.VG {
				prior = append(prior, s)
			}
		}
	}
	args := []string{"--snapshot", "--addtag", lvmTag}
	if o.Owner > 0 {
		start, err := procStart(o.Owner)
		if err != nil {
			return nil, fmt.Errorf("owner: %w", err)
		}
		args = append(args, "--addtag", fmt.Sprintf("%s%d_%d", ownerTagPrefix, o.Owner, start))
	}
	if o.Keep {
		args = append(args, "--addtag", keptTag)
	}
	switch b {
	case LVM:
		sz, want, err := cowSize(o.Size, l)
		if err != nil {
			return nil, err
		}
		free := num(l.VGFree)
		if free == 0 || want > free {
			hint := "use a smaller --size, add a physical volume, or use a thin volume"
			if free == 0 {
				hint = "free some, add a physical volume, or use a thin volume"
			}
			if len(prior) == 1 {
				hint += fmt.Sprintf("; snapctl's snapshot %s takes space in it: %s", m.leftoverList(prior), leftoverHint(prior))
			} else if len(prior) > 1 {
				hint += fmt.Sprintf("; snapctl's snapshots %s take space in it: %s", m.leftoverList(prior), leftoverHint(prior))
			}
			if free == 0 {
				return nil, fmt.Errorf("volume group %s has no free space for a COW snapshot of %s: %w; %s",
					l.VG, l.Name, ErrNoSpace, hint)
			}
			return nil, fmt.Errorf("volume group %s has %s free, a COW snapshot of %s needs %s: %w; %s",
				l.VG, humanize.IBytes(free), l.Name, humanize.IBytes(want), ErrNoSpace, hint)
		}
		args = append(args, sz...)
	case LVMThin:
		if l.Segtype != "thin" {
			return nil, fmt.Errorf("backend lvm-thin: %s/%s is %s, not a thin volume: %w", l.VG, l.Name, l.Segtype, ErrUnsupported)
		}
		if o.Size != "" {
			return nil, fmt.Errorf("--size does not apply to a thin snapshot (it draws on the pool %s)", l.Pool)
		}
		// Thin snapshots are created with the activation-skip flag set,
		// so they would not be activated: clear it (-kn).
		args = append(args, "--setactivationskip", "n")
	}
	name := o.Name
	if name == "" {
		now := m.timeNow()
		name = defaultName(l.Name, now)
		for i := 2; m.lvExists(ctx, l.VG, name); i++ {
			name = fmt.Sprintf("%s_%d", defaultName(l.Name, now), i)
		}
	} else if m.lvExists(ctx, l.VG, name) {
		return nil, fmt.Errorf("logical volume %s/%s: %w", l.VG, name, ErrExists)
	}
	args = append(args, "--name", name, l.VG+"/"+l.Name)
	// made tells that lvcreate ran and did not fail for the name being
	// taken: only then can a volume of that name be this call's own.
	made := false
	snap, err := m.instant(ctx, origin, o, []string{"/etc/lvm"}, func() (*Snapshot, error) {
		// Never kill lvm midway through a metadata update: the commands
		// that change something run to their end even if ctx is done.
		if _, err := command(context.WithoutCancel(ctx), "lvcreate", args...); err != nil {
			var ce *cmdError
			if errors.As(err, &ce) && strings.Contains(ce.Stderr, "already exists") {
				// Taken since the check above (another snapctl
				// run, a --pre hook): not ours to remove.
				return nil, fmt.Errorf("logical volume %s/%s: %w", l.VG, name, ErrExists)
			}
			made = true
			return nil, fmt.Errorf("create snapshot of %s/%s: %w", l.VG, l.Name, err)
		}
		made = true
		s, err := m.Status(ctx, Snapshot{Backend: b, VG: l.VG, LV: name})
		if err != nil {
			return nil, err
		}
		return &s, nil
	})
	if err != nil {
		// Leave nothing behind: lvcreate may have made the volume before
		// failing, or a hook failed after it.
		rctx := context.WithoutCancel(ctx)
		if !made {
			return nil, err
		}
		if nl, lerr := m.lvInfo(rctx, l.VG+"/"+name); lerr == nil && nl.hasTag(lvmTag) {
			if rerr := m.removeLVM(rctx, l.VG+"/"+name); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	var same []Snapshot
	for _, s := range prior {
		// One a live snapctl run uses is no leftover.
		if s.Origin == l.VG+"/"+l.Name && !s.ownerAlive() && !s.Kept {
			same = append(same, s)
		}
	}
	if len(same) == 1 {
		fmt.Fprintf(m.stderr(), "snapctl: warning: an earlier snapshot of %s/%s is still there: %s; until it is removed it takes space and slows every write to %s/%s: %s\n",
			l.VG, l.Name, m.leftoverList(same), l.VG, l.Name, leftoverHint(same))
	} else if len(same) > 1 {
		fmt.Fprintf(m.stderr(), "snapctl: warning: earlier snapshots of %s/%s are still there: %s; until they are removed they take space and slow every write to %s/%s: %s\n",
			l.VG, l.Name, m.leftoverList(same), l.VG, l.Name, leftoverHint(same))
	}
	return snap, nil
}

// leftoverList names snapshots with their age: "/dev/vg/x (made 5s ago)".
func (m *Manager) leftoverList(ss []Snapshot) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s (made %v ago)", s.Path, m.timeNow().Sub(s.Created).Round(time.Second)))
	}
	return strings.Join(parts, ", ")
}

// leftoverHint says how to be rid of snapctl's snapshots ss.
func leftoverHint(ss []Snapshot) string {
	it := "it"
	if len(ss) > 1 {
		it = "them"
	}
	return fmt.Sprintf("snapctl remove %s if no copy reads %s any more, and run snapctl gc --older-than D from cron", it, it)
}

func (m *Manager) lvExists(ctx context.Context, vg, name string) bool {
	_, err := m.lvInfo(ctx, vg+"/"+name)
	return err == nil
}

func (m *Manager) removeLVM(ctx context.Context, path string) error {
	l, err := m.lvInfo(ctx, path)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove %s: no such logical volume", path)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if !l.hasTag(lvmTag) || !l.isSnapshot() {
		return fmt.Errorf("remove %s: %s/%s has no %q tag: %w", path, l.VG, l.Name, lvmTag, ErrNotOurs)
	}
	major, minor := num(l.Major), num(l.Minor)
	active := l.Major != "" && l.Major != "-1"
	return m.retryBusy(ctx, path, func() error {
		_, err := command(context.WithoutCancel(ctx), "lvremove", "--force", "--yes", l.VG+"/"+l.Name)
		return err
	}, func() string {
		if !active {
			return ""
		}
		return holdersOfDev(uint32(major), uint32(minor))
	})
}

// extend grows a COW snapshot (or a thin snapshot's pool) by half its size,
// at least one extent, at most what the volume group has free. It returns
// the bytes added, 0 when the volume group is full.
func (m *Manager) extend(ctx context.Context, s Snapshot) (uint64, error) {
	target := s.VG + "/" + s.LV
	if s.Backend == LVMThin {
		target = s.VG + "/" + s.Pool
	}
	l, err := m.lvInfo(ctx, target)
	if err != nil {
		return 0, err
	}
	free, ext := num(l.VGFree), num(l.VGExtent)
	if ext == 0 || free < ext {
		return 0, nil
	}
	add := num(l.Size) / 2
	if add < ext {
		add = ext
	}
	if add > free {
		add = free
	}
	add = add / ext * ext
	if _, err := command(context.WithoutCancel(ctx), "lvextend", "-L", fmt.Sprintf("+%db", add), target); err != nil {
		return 0, fmt.Errorf("extend %s: %w", target, err)
	}
	return add, nil
}
