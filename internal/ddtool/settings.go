package ddtool

import (
	"strconv"
	"time"

	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/state"
)

// DefaultResumeEvery is how often blkwrite makes the target durable and
// records progress, unless $BLKPIPE_RESUME_EVERY (a Go duration) says.
const DefaultResumeEvery = 2 * time.Second

// Settings are the tuning and places the environment gives both tools.
// Main reads them once (ReadSettings) and hands them down as fields.
type Settings struct {
	Chunk, Buffers, Readers, Piece int // ddcopy.Copier's sizes; 0 is the engine's default
	NoAIO                          bool
	StateDir                       state.Dir
	ResumeEvery                    time.Duration
	// SSH is set when the tool runs under sshd (SSH_CONNECTION): what it
	// tells the user to run is read on the other host.
	SSH bool
}

// ReadSettings reads the settings from the environment through getenv
// (os.Getenv): BLKPIPE_CHUNK, BLKPIPE_BUFFERS, BLKPIPE_READERS and
// BLKPIPE_PIECE (positive integers, else the default), BLKPIPE_AIO (0
// turns native AIO off), BLKPIPE_STATE_DIR (default state.DefaultDir),
// BLKPIPE_RESUME_EVERY (a Go duration, else DefaultResumeEvery) and
// SSH_CONNECTION.
func ReadSettings(getenv func(string) string) Settings {
	positive := func(name string) int {
		if v, err := strconv.Atoi(getenv(name)); err == nil && v > 0 {
			return v
		}
		return 0
	}
	s := Settings{
		Chunk:       positive("BLKPIPE_CHUNK"),
		Buffers:     positive("BLKPIPE_BUFFERS"),
		Readers:     positive("BLKPIPE_READERS"),
		Piece:       positive("BLKPIPE_PIECE"),
		NoAIO:       getenv("BLKPIPE_AIO") == "0",
		StateDir:    state.Dir(getenv("BLKPIPE_STATE_DIR")),
		ResumeEvery: DefaultResumeEvery,
		SSH:         getenv("SSH_CONNECTION") != "",
	}
	if v := getenv("BLKPIPE_RESUME_EVERY"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			s.ResumeEvery = d
		}
	}
	return s
}

// Tune gives c the engine's settings.
func (s Settings) Tune(c *ddcopy.Copier) {
	c.ChunkSize, c.Buffers, c.Readers, c.PieceSize, c.NoAIO = s.Chunk, s.Buffers, s.Readers, s.Piece, s.NoAIO
}
