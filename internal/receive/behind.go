package receive

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind starts the writeback of a delta's records soon after they
// are written (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait
// for it). A delta is written through the page cache (see setDirect):
// left to the final fdatasync, all of its records would go to the disk
// only after the stream's end, and the copy would wait for them there.
// The fdatasync still makes them durable; this only starts them early.
type writeBehind struct {
	f     *os.File
	from  int64 // the first byte written and not yet started
	to    int64 // the end of the last write
	dirty int64 // bytes written since from
}

// writeBehindEvery is how many bytes written start their writeback.
const writeBehindEvery = 1 << 20

// wrote notes n bytes written at off (in increasing offsets) and starts
// the writeback of those written since the last start, every
// writeBehindEvery bytes. w may be nil.
func (w *writeBehind) wrote(off, n int64) {
	if w == nil {
		return
	}
	if w.dirty == 0 {
		w.from = off
	}
	w.to, w.dirty = off+n, w.dirty+n
	if w.dirty >= writeBehindEvery {
		w.start()
	}
}

// start starts the writeback of what was written since the last start.
// Its failure is left to the fdatasync that follows.
func (w *writeBehind) start() {
	if w == nil || w.dirty == 0 {
		return
	}
	unix.SyncFileRange(int(w.f.Fd()), w.from, w.to-w.from, unix.SYNC_FILE_RANGE_WRITE)
	w.dirty = 0
}
