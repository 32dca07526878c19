package cli

import "testing"

func TestStateDir(t *testing.T) {
	snapctl := StateDir{Sub: "snapctl", OldVar: "SNAPCTL_STATE_DIR", OldDir: "/var/lib/snapctl"}
	tests := []struct {
		name   string
		dir    StateDir
		env    map[string]string
		oldDir bool // OldDir exists
		want   string
	}{
		{"blkwrite default", StateDir{}, nil, false, "/var/lib/blkpipe"},
		{"blkwrite variable", StateDir{}, map[string]string{"BLKPIPE_STATE_DIR": "/srv/st"}, false, "/srv/st"},
		{"snapctl new install", snapctl, nil, false, "/var/lib/blkpipe/snapctl"},
		{"snapctl existing install", snapctl, nil, true, "/var/lib/snapctl"},
		{"snapctl old variable", snapctl, map[string]string{"SNAPCTL_STATE_DIR": "/old"}, true, "/old"},
		{"blkpipe variable wins", snapctl, map[string]string{"SNAPCTL_STATE_DIR": "/old", "BLKPIPE_STATE_DIR": "/srv/st"}, true, "/srv/st/snapctl"},
	}
	for _, tt := range tests {
		isDir := func(p string) bool { return tt.oldDir && p == tt.dir.OldDir }
		if got := tt.dir.Path(func(k string) string { return tt.env[k] }, isDir); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
