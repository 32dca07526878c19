package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name     string
		version  string
		settings map[string]string
		want     string
	}{
		{"checkout", "(devel)", map[string]string{"vcs.revision": rev, "vcs.modified": "false"}, "(devel) 0123456789ab"},
		{"dirty checkout", "(devel)", map[string]string{"vcs.revision": rev, "vcs.modified": "true"}, "(devel) 0123456789ab+dirty"},
		{"tagged", "v1.2.0", nil, "v1.2.0"},
		{"pseudo-version names the commit", "v0.0.0-20261126071500-0123456789ab", map[string]string{"vcs.revision": rev}, "v0.0.0-20261126071500-0123456789ab"},
		{"nothing recorded", "", nil, "(devel)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: tc.version}}
			for k, v := range tc.settings {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
			}
			if got := describe(bi); got != tc.want {
				t.Errorf("describe = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLine(t *testing.T) {
	if got := Line("blkcat"); len(got) <= len("blkcat ") || got[:7] != "blkcat " {
		t.Errorf("Line = %q", got)
	}
}
