package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// words are the pieces client commands are made of in FuzzRestrict.
var words = []string{"blkwrite", "blkcat", "--sums", "--sums=64K", "--resume-point", "--raw", "--allow", "--allow-raw",
	"of=", "if=", "seek=1", "count=0", "bs=4K", "conv=notrunc", "oflag=append", "--no-verify", "--assume-zeroed",
	"IMGS/data.img", "IMGS/new.img", "IMGS/lnk/../data.img", "IMGS/lnk/../new.img", "IMGS/self/data.img",
	"IMGS/dl", "FAR/data.img", "FAR/back/new.img", "FAR/hard.img", "/dev/null", "'IMGS/data.img'", ";", "-q", " "}

// FuzzRestrict is the property of the forced-command path over client
// commands and a layout of symlinks (out of the allowed directory, back
// into it, dangling, a hard link): whenever restrict accepts a command,
// the file the kernel opens for its target (or creates, for the new
// image) is an allowed one, and the key's options were checked.
func FuzzRestrict(f *testing.F) {
	for _, seed := range [][]byte{{0, 17}, {0, 8, 17}, {0, 19}, {0, 20}, {1, 2, 17}, {1, 2, 19}, {0, 4, 17}, {0, 5, 17}, {0, 21}, {0, 22}, {0, 24}, {0, 25}} {
		f.Add(seed)
	}
	root := f.TempDir()
	imgs, far := filepath.Join(root, "imgs"), filepath.Join(root, "far")
	os.MkdirAll(filepath.Join(far, "dir"), 0o755)
	os.MkdirAll(imgs, 0o755)
	os.WriteFile(filepath.Join(imgs, "data.img"), nil, 0o644)
	os.WriteFile(filepath.Join(far, "data.img"), nil, 0o644)
	os.Link(filepath.Join(imgs, "data.img"), filepath.Join(far, "hard.img"))
	os.Symlink(filepath.Join(far, "dir"), filepath.Join(imgs, "lnk"))
	os.Symlink(".", filepath.Join(imgs, "self"))
	os.Symlink("../far/none.img", filepath.Join(imgs, "dl"))
	os.Symlink("../imgs", filepath.Join(far, "back"))
	allowed := []string{filepath.Join(imgs, "data.img"), filepath.Join(imgs, "new.img")}
	var dataID, dirID unix.Stat_t
	unix.Stat(allowed[0], &dataID)
	unix.Stat(imgs, &dirID)
	f.Setenv("BLKPIPE_STATE_DIR", filepath.Join(root, "state"))
	execve = func(bin string, argv, env []string) error { return errors.New("exec " + strings.Join(argv, " ")) }

	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 10 {
			return
		}
		var cmd []string
		for i, c := range b {
			w := words[int(c)%len(words)]
			if (w == "of=" || w == "if=") && i+1 < len(b) {
				continue
			}
			cmd = append(cmd, w)
		}
		orig := strings.NewReplacer("IMGS", imgs, "FAR", far).Replace(strings.Join(cmd, " "))
		os.Setenv("SSH_ORIGINAL_COMMAND", orig)
		args, lim, err := restrict([]string{"--allow", allowed[0], "--allow", allowed[1]})
		if err != nil {
			if strings.HasPrefix(err.Error(), "exec ") {
				// blkcat --sums: the argv's if= must be allowed.
				for _, a := range strings.Fields(err.Error()) {
					if strings.HasPrefix(a, "if=") {
						checkTarget(t, orig, strings.TrimPrefix(a, "if="), &dataID)
					}
				}
				return
			}
			return // refused, or a usage error: the property is about what is accepted
		}
		ops, opt, err := parse(args)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", orig, err)
		}
		if lim.rs == nil {
			t.Fatalf("%q accepted without a restriction", orig)
		}
		if lim.rs.CheckOptions(ops, opt.noVerify, opt.assumeZeroed, opt.raw) == nil && (ops.Seek != 0 || ops.Count >= 0 || opt.raw || opt.noVerify || opt.assumeZeroed || ops.OFlag.Append || ops.Conv.Notrunc) {
			t.Fatalf("%q: the key's options passed", orig)
		}
		if lim.rs.Grant.Exists {
			checkTarget(t, orig, ops.Of, &dataID)
			return
		}
		fd, err := unix.Open(ops.Of, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatalf("%q accepted a new file that cannot be created: %v", orig, err)
		}
		defer os.Remove(allowed[1])
		defer unix.Close(fd)
		var st, want unix.Stat_t
		unix.Fstat(fd, &st)
		if unix.Stat(allowed[1], &want) != nil || want.Ino != st.Ino || want.Dev != st.Dev {
			t.Fatalf("%q created a file that is not %s", orig, allowed[1])
		}
	})
}

// checkTarget fails unless path opens the allowed image want.
func checkTarget(t *testing.T, orig, path string, want *unix.Stat_t) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Ino != want.Ino || st.Dev != want.Dev {
		t.Fatalf("%q accepted %s, which is not the allowed image (%v)", orig, path, err)
	}
}
