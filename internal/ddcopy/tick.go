package ddcopy

// tickBytes is the byte count dd's status=progress line shows at the
// check it makes after reading the first record of ch: dd reads one record
// at a time and looks at the clock before each read, so when records that
// dd would have read one by one arrive in one chunk, the line due then
// shows the output after the first of them, not after all. before is the
// output written before ch, written after it. Reblocking, dd had written
// only the whole obs blocks that record completed.
func (c *Copier) tickBytes(ch *chunk, before, written int64) int64 {
	if len(ch.recs) == 0 || ch.recs[0].count <= 1 && len(ch.recs) == 1 {
		return written
	}
	first := ch.recs[0].off + int64(ch.recs[0].size) // stream bytes after the first record
	if c.P.Reblock {
		first = first / int64(c.obs) * int64(c.obs)
	}
	return min(max(first, before), written)
}
