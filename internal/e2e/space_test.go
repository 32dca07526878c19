package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blkpipe/blkpipe/internal/frame"
	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestSpaceBehindDevice: a device whose storage runs out inside it (a
// thin pool; here a loop device over a file on a full tmpfs) is not "a
// target smaller than the input": blkwrite says the storage behind it is
// out of space, where, and how many bytes were written before the error.
func TestSpaceBehindDevice(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedCmd(t, "mount", "umount", "losetup", "bash")
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	back := filepath.Join(mnt, "back")
	if err := os.Truncate(back, 0); err != nil {
		os.WriteFile(back, nil, 0o644)
	}
	os.Truncate(back, 8<<20)
	dev := testutil.LoopDevice(t, back)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, randomBytes(6<<20, 12))

	_, stderr, code := sh(t, nil, "$BC -q "+src+" | $BW -q "+dev)
	want := "blkwrite: the storage behind it is out of space: '" + dev + "' holds 8388608 bytes and the write at offset 2097152 was inside it: 2097152 bytes were written to '" + dev + "' before the error"
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "smaller than the input") {
		t.Errorf("raw: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	_, stderr, code = sh(t, nil, "$BC -q --frame "+src+" | $BW -q "+dev)
	for _, want := range []string{
		"blkwrite: error writing '" + dev + "' at offset 2097152: No space left on device (the storage behind it is out of space",
		"blkwrite: the copy is incomplete: 2097152 bytes landed on '" + dev + "'",
	} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("framed: exit %d, stderr %q; want 1 and %q", code, stderr, want)
		}
	}
}

// TestZeroPetabyte is finding 4: a stream of unknown source size with one
// ZERO record of 1 PiB kept blkwrite hashing zeros until killed. Onto a
// block device it is refused at that record, before it is hashed, with
// or without --allow (under --allow the unknown size is refused first).
func TestZeroPetabyte(t *testing.T) {
	testutil.NeedRoot(t)
	dev, _ := testutil.LoopImage(t, 1<<20)
	id := [16]byte{1, 2, 3}
	s := stream(t, make([]byte, 1<<16), frame.WithStreamID(id), frame.WithBlockSize(1<<16))
	rec := s[frame.HeaderLen : frame.HeaderLen+frame.RecordHeaderLen]
	binary.LittleEndian.PutUint64(rec[16:], 1<<50)
	tab := crc32.MakeTable(crc32.Castagnoli)
	binary.LittleEndian.PutUint32(rec[28:], crc32.Update(crc32.Checksum(id[:], tab), tab, rec[:28]))
	s = s[:frame.HeaderLen+frame.RecordHeaderLen]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dev}, "ZERO [0, 1125899906842624) beyond the limit of 1048576 bytes"},
		{[]string{"--allow", dev}, "refused: the stream does not declare its source size"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, blkwriteTool(t), tc.args...)
		cmd.Env = append(os.Environ(), "SSH_ORIGINAL_COMMAND=blkwrite "+dev)
		cmd.Stdin = bytes.NewReader(s)
		_, stderr, code := runCmd(t, cmd)
		if ctx.Err() != nil {
			t.Fatalf("%v: blkwrite still ran after a minute", tc.args)
		}
		cancel()
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}
