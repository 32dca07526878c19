package sshtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/testenv/sshtest"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestNightlyThroughKey runs the README's nightly delta and its resume
// point through the write key's forced command over real sshd: `blkcat
// --sums DST` and `blkwrite --resume-point DST` are allowed for the
// allowed DST, and the delta verifies.
func TestNightlyThroughKey(t *testing.T) {
	testutil.NeedRoot(t)
	dir := tools(t)
	const size = 16 << 20
	old := sshtest.RandomImage(t, size, 21)
	dst, _ := testutil.LoopImage(t, size)
	testutil.Run(t, "dd", "if="+old, "of="+dst, "bs=1M", "status=none", "oflag=direct")
	snap := filepath.Join(t.TempDir(), "snap.img")
	b, _ := os.ReadFile(old)
	copy(b[5<<20:], "the night's change")
	os.WriteFile(snap, b, 0o644)
	lab := sshtest.New(t, dir, []string{"backup"})
	lab.Host("backup").SetKeyOptions(fmt.Sprintf(`command="%s --allow %s",restrict`, testutil.Tool(t, "blkwrite"), dst))
	run := func(script string) sshtest.Result {
		return lab.Run(lab.Client, script, time.Minute, "SNAP="+snap, "DST="+dst)
	}
	r := run(`$SSH backup blkcat --sums "$DST" | blkcat --against - "$SNAP" -z lz4 | $SSH backup blkwrite "$DST"`)
	if r.Code != 0 || !verifiedLine.MatchString(r.Stderr) {
		t.Fatalf("nightly delta through the key: exit %d\n%s", r.Code, r.Stderr)
	}
	if n, first := sshtest.Diff(t, snap, dst, size); n != 0 {
		t.Fatalf("the target differs from the snapshot in %d bytes from %d", n, first)
	}
	r = run(`$SSH backup blkwrite --resume-point "$DST"`)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no interrupted copy to resume") {
		t.Fatalf("--resume-point through the key: exit %d\n%s", r.Code, r.Stderr)
	}
	r = run(`$SSH backup blkcat "$DST" | wc -c`)
	if !strings.Contains(r.Stderr, "refused: this key runs only `blkcat --sums DST` of blkcat") || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("plain blkcat through the write key: exit %d, stdout %q\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestReadKey is the restore's read-only key over real sshd:
// command="blkcat --allow-read SRC" reads SRC (framed, compressed, its
// sums) and nothing else: no other path, no symlink escape, no of=, no
// if= trick.
func TestReadKey(t *testing.T) {
	testutil.NeedRoot(t)
	dir := tools(t)
	const size = 8 << 20
	src := testutil.LoopDevice(t, sshtest.RandomImage(t, size, 22))
	other, _ := testutil.LoopImage(t, size)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	links := t.TempDir()
	os.Symlink(filepath.Dir(secret), filepath.Join(links, "lnk"))
	os.Symlink(src, filepath.Join(links, "src"))
	restored := filepath.Join(t.TempDir(), "restored.img")
	lab := sshtest.New(t, dir, []string{"backup"})
	lab.Host("backup").SetKeyOptions(fmt.Sprintf(`command="%s --allow-read %s",restrict`, testutil.Tool(t, "blkcat"), src))
	run := func(script string) sshtest.Result {
		return lab.Run(lab.Client, script, time.Minute, "SRC="+src, "OTHER="+other, "SECRET="+secret, "LINKS="+links, "OUT="+restored)
	}
	r := run(`$SSH backup blkcat -z lz4 "$SRC" | blkwrite "$OUT"`)
	if r.Code != 0 || !verifiedLine.MatchString(r.Stderr) {
		t.Fatalf("restore through the read key: exit %d\n%s", r.Code, r.Stderr)
	}
	if n, first := sshtest.Diff(t, src, restored, size); n != 0 {
		t.Fatalf("the restored image differs in %d bytes from %d", n, first)
	}
	if r := run(`$SSH backup blkcat "$LINKS/src" | cmp - "$SRC"`); r.Code != 0 {
		t.Fatalf("through a symlink to the source: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := run(`$SSH backup blkcat --sums "$SRC" | wc -c`); r.Code != 0 || strings.TrimSpace(r.Stdout) == "0" {
		t.Fatalf("--sums through the read key: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, tc := range []struct{ name, script, want string }{
		{"other path", `$SSH backup blkcat "$SECRET"`, "blkcat: refused: source '" + secret + "' is not allowed"},
		{"symlink and ..", `$SSH backup blkcat "$LINKS/lnk/../$(basename $(dirname $SECRET))/secret"`, "is not allowed"},
		{"of=", `$SSH backup blkcat "$SRC" of="$OTHER"`, "blkcat: refused: this key reads to standard output only"},
		{"if= trick", `$SSH backup blkcat if="$SECRET" "$SRC"`, "blkcat:"},
		{"sums file", `$SSH backup blkcat --against "$SECRET" "$SRC"`, "refused: this key reads sums from standard input only"},
		{"blkwrite", `$SSH backup blkwrite "$SRC" </dev/null`, "blkcat: refused: this key may only run blkcat"},
		{"shell", `$SSH backup "blkcat $SRC; cat $SECRET"`, "refused: shell syntax ';'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zero := sshtest.BLAKE3(t, other)
			r := run(tc.script)
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) || strings.Contains(r.Stdout, "secret") {
				t.Fatalf("exit %d, stdout %d bytes, stderr %q; want refused with %q", r.Code, len(r.Stdout), r.Stderr, tc.want)
			}
			if sshtest.BLAKE3(t, other) != zero {
				t.Fatalf("%s was written", other)
			}
		})
	}
}
