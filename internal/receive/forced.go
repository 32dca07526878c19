package receive

import (
	"strings"
)

// Forced splits the arguments of an ssh forced command (blkwrite --allow
// PATH --keep N) into the options it sets for every stream its key sends
// (--keep N) and the rest. The client cannot turn them off: WithForced
// refuses a client's own --keep.
func Forced(own []string) (forced, rest []string) {
	for i := 0; i < len(own); i++ {
		a := own[i]
		switch {
		case a == "--keep" && i+1 < len(own):
			forced = append(forced, a, own[i+1])
			i++
		case strings.HasPrefix(a, "--keep="):
			forced = append(forced, a)
		default:
			rest = append(rest, a)
		}
	}
	return forced, rest
}

// WithForced returns the client's arguments (as Restrict returned them)
// with the forced options appended; a client's own --keep is refused
// when the forced command set one, since only the forced command decides.
func WithForced(client, forced []string) ([]string, error) {
	if len(forced) == 0 {
		return client, nil
	}
	for _, a := range client {
		if a == "--keep" || strings.HasPrefix(a, "--keep=") {
			return nil, &refusedError{"the forced command sets --keep for this key; the client may not change it"}
		}
	}
	return append(append([]string{}, client...), forced...), nil
}
