package ddtool

import (
	"strconv"

	"github.com/blkpipe/blkpipe/internal/cli"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/state"
)

// Settings are the tuning and places the environment gives both tools.
// Their run reads them once (ReadSettings) and hands them down as fields.
type Settings struct {
	Chunk, Buffers, Readers, Piece int // ddcopy.Copier's sizes; 0 is the engine's default
	NoAIO                          bool
	StateDir                       state.Dir
}

// ReadSettings reads the settings from the environment through getenv
// (os.Getenv): BLKPIPE_CHUNK, BLKPIPE_BUFFERS, BLKPIPE_READERS and
// BLKPIPE_PIECE (positive integers, else the default), BLKPIPE_AIO (0
// turns native AIO off) and BLKPIPE_STATE_DIR (cli.StateDir: default /var/lib/blkpipe).
func ReadSettings(getenv func(string) string) Settings {
	positive := func(name string) int {
		if v, err := strconv.Atoi(getenv(name)); err == nil && v > 0 {
			return v
		}
		return 0
	}
	s := Settings{
		Chunk:    positive("BLKPIPE_CHUNK"),
		Buffers:  positive("BLKPIPE_BUFFERS"),
		Readers:  positive("BLKPIPE_READERS"),
		Piece:    positive("BLKPIPE_PIECE"),
		NoAIO:    getenv("BLKPIPE_AIO") == "0",
		StateDir: state.Dir(cli.StateDir{}.Path(getenv, nil)),
	}
	return s
}

// Tune gives c the engine's settings.
func (s Settings) Tune(c *ddcopy.Copier) {
	c.ChunkSize, c.Buffers, c.Readers, c.PieceSize, c.NoAIO = s.Chunk, s.Buffers, s.Readers, s.Piece, s.NoAIO
}
