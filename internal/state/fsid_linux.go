package state

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fsGetUUID is FS_IOC_GETFSUUID, _IOR(0x15, 0, struct fsuuid2) (Linux
// 6.5 and later): the file system's UUID, as blkid shows it.
const fsGetUUID = 0x80111500

// fsuuid2 is the kernel's struct fsuuid2.
type fsuuid2 struct {
	Len  uint8
	UUID [16]byte
}

// fsName names the file system of the open file fd in a way that stays
// the same when it is mounted again, or "" when there is none: for XFS,
// whose f_fsid is its device number, "uuid:" and its UUID (from
// FS_IOC_GETFSUUID; "" on an older kernel); otherwise "fsid:" and the
// fstatfs f_fsid, which btrfs derives from the file system's UUID and the
// subvolume (so a snapshot, whose files keep their inode numbers and
// ctimes, is another file system) and ext4 from its UUID. A zero f_fsid
// names nothing.
func fsName(fd int) string {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return ""
	}
	if st.Type == unix.XFS_SUPER_MAGIC {
		var u fsuuid2
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsGetUUID, uintptr(unsafe.Pointer(&u)))
		if errno != 0 || u.Len != 16 || u.UUID == [16]byte{} {
			return ""
		}
		return fmt.Sprintf("uuid:%x", u.UUID)
	}
	if st.Fsid.Val == [2]int32{} {
		return ""
	}
	return fmt.Sprintf("fsid:%08x%08x", uint32(st.Fsid.Val[0]), uint32(st.Fsid.Val[1]))
}
