package snapshot

import (
	"strings"
	"testing"
)

func TestKeptNames(t *testing.T) {
	tests := []struct {
		name        string
		s           Snapshot
		wantName    string
		wantLabel   string
		hintHas     []string
		targetAfter string
	}{
		{"thin", Snapshot{Path: "/dev/vg1/data_snapctl_v20261207T004208Z_78cb33031ca698dc", Backend: LVMThin, VG: "vg1", LV: "data_snapctl_v20261207T004208Z_78cb33031ca698dc", Kept: true},
			"data_snapctl_v20261207T004208Z_78cb33031ca698dc", "20261207T004208Z_78cb33031ca698dc",
			[]string{"lvconvert --merge vg1/data_snapctl_v20261207T004208Z_78cb33031ca698dc", "blkcat /dev/vg1/data_snapctl_v"}, "/dev/vg1/data"},
		{"btrfs", Snapshot{Path: "/srv/.snapctl/d.img_snapctl_v1_ab/d.img", Subvolume: "/srv/.snapctl/d.img_snapctl_v1_ab", Backend: Btrfs, Kept: true},
			"d.img_snapctl_v1_ab", "1_ab", []string{"cp --reflink=always /srv/.snapctl/d.img_snapctl_v1_ab/d.img /srv/d.img"}, "/srv/d.img"},
		{"reflink", Snapshot{Path: "/srv/.snapctl/d.img_snapctl_v1_ab", Backend: Reflink, Kept: true},
			"d.img_snapctl_v1_ab", "1_ab", []string{"cp --reflink=always /srv/.snapctl/d.img_snapctl_v1_ab /srv/d.img"}, "/srv/d.img"},
		{"not kept", Snapshot{Path: "/srv/.snapctl/d.img_snapctl_v1_ab", Backend: Reflink},
			"d.img_snapctl_v1_ab", "", nil, "/srv/d.img"},
		{"snapctl create's", Snapshot{Path: "/dev/vg/data_snapctl_20261207T004208", Backend: LVM, VG: "vg", LV: "data_snapctl_20261207T004208", Kept: true},
			"data_snapctl_20261207T004208", "", []string{"lvconvert --merge vg/data_snapctl_20261207T004208"}, "/dev/vg/data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Name(); got != tt.wantName {
				t.Errorf("Name() = %q, want %q", got, tt.wantName)
			}
			if got := tt.s.Label(); got != tt.wantLabel {
				t.Errorf("Label() = %q, want %q", got, tt.wantLabel)
			}
			hint := tt.s.UseHint(tt.targetAfter)
			for _, h := range tt.hintHas {
				if !strings.Contains(hint, h) {
					t.Errorf("UseHint = %q, lacks %q", hint, h)
				}
			}
		})
	}
	if got := KeepName("data", "20261207T004208Z_78cb"); got != "data_snapctl_v20261207T004208Z_78cb" {
		t.Errorf("KeepName = %q", got)
	}
}

// TestKeptTag: a kept LVM version is read from its tag, and is no
// leftover for GC.
func TestKeptTag(t *testing.T) {
	l := lv{Name: "data_snapctl_vX", VG: "vg", Origin: "data", Attr: "Vwi-a-tz--", Segtype: "thin", Tags: "snapctl,snapctl_kept"}
	if s := l.toSnapshot(nil); !s.Kept {
		t.Errorf("toSnapshot of tags %q: Kept false", l.Tags)
	}
	l.Tags = "snapctl"
	if s := l.toSnapshot(nil); s.Kept {
		t.Errorf("toSnapshot of tags %q: Kept true", l.Tags)
	}
}
