package snapshot

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

// TestParseReport reads an lvs JSON report as captured in the QEMU guest
// (lvm 2.03.16) and picks snapctl's snapshots out of it.
func TestParseReport(t *testing.T) {
	b, err := os.ReadFile("testdata/lvs-thin.json")
	if err != nil {
		t.Fatal(err)
	}
	var r lvsReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	rows := r.Report[0].LV
	pools := map[string]float64{}
	for _, l := range rows {
		if l.Segtype == "thin-pool" {
			pools[l.VG+"/"+l.Name] = l.poolFill()
		}
	}
	var got []Snapshot
	for _, l := range rows {
		if l.hasTag(lvmTag) && l.isSnapshot() {
			got = append(got, l.toSnapshot(pools))
		}
	}
	want := []Snapshot{
		{Path: "/dev/vg/data_snapctl_20261125T221309", Origin: "vg/data", Backend: LVM, Created: time.Unix(1795644789, 0).UTC(),
			VG: "vg", LV: "data_snapctl_20261125T221309", Size: 8 << 20, Fill: 37.7},
		{Path: "/dev/vg/old", Origin: "vg/data", Backend: LVM, Created: time.Date(2026, 11, 25, 21, 54, 1, 0, time.UTC),
			VG: "vg", LV: "old", Size: 4 << 20, Fill: 100, Invalid: true},
		{Path: "/dev/vg/thin_snapctl_20261125T221500", Origin: "vg/thin", Backend: LVMThin, Created: time.Unix(1795644900, 0).UTC(),
			VG: "vg", LV: "thin_snapctl_20261125T221500", Pool: "pool", Fill: 41.5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("snapshots:\n got %+v\nwant %+v", got, want)
	}
	if rows[0].isSnapshot() || !rows[3].isSnapshot() || rows[3].hasTag(lvmTag) {
		t.Error("origin taken for a snapshot, or the untagged snapshot for snapctl's")
	}
}

func TestCowSize(t *testing.T) {
	origin := lv{Size: "1073741824", VGFree: "536870912", VGSize: "2147483648"}
	for _, tc := range []struct {
		in   string
		args []string
		want uint64
		err  bool
	}{
		{"", []string{"-l", "100%FREE"}, 512 << 20, false},
		{"50%FREE", []string{"-l", "50%FREE"}, 256 << 20, false},
		{"20%", []string{"-l", "20%ORIGIN"}, 1073741824 / 5, false},
		{"20%origin", []string{"-l", "20%ORIGIN"}, 1073741824 / 5, false},
		{"10%VG", []string{"-l", "10%VG"}, 2147483648 / 10, false},
		{"512M", []string{"-L", "536870912b"}, 512 << 20, false},
		{"2g", []string{"-L", "2147483648b"}, 2 << 30, false},
		{"4096b", []string{"-L", "4096b"}, 4096, false},
		{"1000", []string{"-L", "1024b"}, 1024, false}, // rounded up to sectors
		{"0%", nil, 0, true},
		{"150%FREE", nil, 0, true},
		{"lots", nil, 0, true},
		{"-5M", nil, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			args, want, err := cowSize(tc.in, origin)
			if (err != nil) != tc.err || !reflect.DeepEqual(args, tc.args) || want != tc.want {
				t.Errorf("cowSize(%q) = %v, %d, %v; want %v, %d, error %v", tc.in, args, want, err, tc.args, tc.want, tc.err)
			}
		})
	}
}

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]Backend{"": "", "auto": "", "lvm": LVM, "lvm-thin": LVMThin, "btrfs": Btrfs, "reflink": Reflink} {
		if got, err := ParseBackend(in); err != nil || got != want {
			t.Errorf("ParseBackend(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseBackend("zfs"); err == nil {
		t.Error("ParseBackend(zfs) succeeded")
	}
}

func TestIsBusy(t *testing.T) {
	for msg, want := range map[string]bool{
		"Logical volume vg/x in use.":                                 true,
		"Can't remove open logical volume \"x\"":                      true,
		"ERROR: Could not destroy subvolume: Device or resource busy": true,
		"Failed to find logical volume \"vg/x\"":                      false,
	} {
		if got := isBusy(errors.New(msg)); got != want {
			t.Errorf("isBusy(%q) = %v", msg, got)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/bad\04`: `/bad\04`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
