package ddargs

import (
	"encoding/hex"
	"errors"
)

// ErrConflict is wrapped by the errors Parse returns for operands that
// parse but cannot be used together ("cannot combine direct and nocache",
// "cannot combine lcase and ucase"). dd dies of these with exit status 1,
// not with its usage message, so tools map ErrConflict to a failure (1)
// rather than a usage error (2). It does not wrap ErrUsage.
var ErrConflict = errors.New("conflicting operands")

func conflictErr(msg string) error { return &usageError{msg: msg, conflict: true} }

// Text holds dd's text conversions: conv=ascii, ebcdic, ibm, lcase, ucase,
// swab, block and unblock, and cbs=. As in dd, ascii implies unblock and
// ebcdic and ibm imply block, and block and unblock are dropped without
// cbs= (while cbs= alone changes nothing).
type Text struct {
	ASCII, EBCDIC, IBM bool  // character set translation (at most one)
	Lcase, Ucase       bool  // case translation (at most one)
	Swab               bool  // swap every pair of bytes
	Block, Unblock     bool  // fixed-length records of CBS bytes (at most one; only with CBS > 0)
	CBS                int64 // cbs=, 0 when not given
}

// Active reports whether any text conversion is in force: dd then copies
// through separate input and output buffers, reblocking its output to obs
// even with bs= given.
func (t Text) Active() bool {
	return t.ASCII || t.EBCDIC || t.IBM || t.Lcase || t.Ucase || t.Swab || t.Block || t.Unblock
}

// Translates reports whether Table is other than the identity.
func (t Text) Translates() bool {
	return t.ASCII || t.EBCDIC || t.IBM || t.Lcase || t.Ucase
}

// Table returns dd's translation table: EBCDIC to ASCII first (ascii),
// then the case (lcase, ucase, in the C locale), then ASCII to EBCDIC
// (ebcdic or ibm), each applied to the result of the one before.
func (t Text) Table() [256]byte {
	var tab [256]byte
	for i := range tab {
		tab[i] = byte(i)
	}
	if t.ASCII {
		compose(&tab, ebcdicToASCII)
	}
	for i, c := range tab {
		switch {
		case t.Ucase && 'a' <= c && c <= 'z':
			tab[i] = c - 'a' + 'A'
		case t.Lcase && !t.Ucase && 'A' <= c && c <= 'Z':
			tab[i] = c - 'A' + 'a'
		}
	}
	if t.EBCDIC {
		compose(&tab, asciiToEBCDIC)
	} else if t.IBM {
		compose(&tab, asciiToIBM)
	}
	return tab
}

// Newline and Space return the bytes conv=block and unblock take for a
// newline and a space: ASCII's, or their EBCDIC codes with ebcdic or ibm.
func (t Text) Newline() byte { return t.charset()['\n'] }

// Space: see Newline.
func (t Text) Space() byte { return t.charset()[' '] }

func (t Text) charset() *[256]byte {
	switch {
	case t.EBCDIC:
		return &asciiToEBCDIC
	case t.IBM:
		return &asciiToIBM
	}
	return &identity
}

func compose(tab *[256]byte, next [256]byte) {
	for i, c := range tab {
		tab[i] = next[c]
	}
}

// textOf turns dd's conversion bits and cbs= into a Text.
func textOf(conv uint32, cbs int64) Text {
	return Text{
		ASCII: conv&cASCII != 0, EBCDIC: conv&cEBCDIC != 0, IBM: conv&cIBM != 0,
		Lcase: conv&cLcase != 0, Ucase: conv&cUcase != 0, Swab: conv&cSwab != 0,
		Block: conv&cBlock != 0, Unblock: conv&cUnblock != 0, CBS: cbs,
	}
}

// The tables are POSIX's, as GNU dd 9.1 applies them; they were read
// from /usr/bin/dd's output for the bytes 0 to 255 (conv=ascii, ebcdic
// and ibm without cbs=, which translate and do nothing else), and
// TestTablesAgainstDD checks them against it.
var (
	identity      = table("")
	ebcdicToASCII = table("" +
		"000102039c09867f978d8e0b0c0d0e0f101112139d8508871819928f1c1d1e1f" +
		"80818283840a171b88898a8b8c050607909116939495960498999a9b14159e1a" +
		"20a0a1a2a3a4a5a6a7a8d52e3c282b7c26a9aaabacadaeafb0b121242a293b7e" +
		"2d2fb2b3b4b5b6b7b8b9cb2c255f3e3fbabbbcbdbebfc0c1c2603a2340273d22" +
		"c3616263646566676869c4c5c6c7c8c9ca6a6b6c6d6e6f7071725ecccdcecfd0" +
		"d1e5737475767778797ad2d3d45bd6d7d8d9dadbdcdddedfe0e1e2e3e45de6e7" +
		"7b414243444546474849e8e9eaebeced7d4a4b4c4d4e4f505152eeeff0f1f2f3" +
		"5c9f535455565758595af4f5f6f7f8f930313233343536373839fafbfcfdfeff")
	asciiToEBCDIC = table("" +
		"00010203372d2e2f1605250b0c0d0e0f101112133c3d322618193f271c1d1e1f" +
		"405a7f7b5b6c507d4d5d5c4e6b604b61f0f1f2f3f4f5f6f7f8f97a5e4c7e6e6f" +
		"7cc1c2c3c4c5c6c7c8c9d1d2d3d4d5d6d7d8d9e2e3e4e5e6e7e8e9ade0bd9a6d" +
		"79818283848586878889919293949596979899a2a3a4a5a6a7a8a9c04fd05f07" +
		"202122232415061728292a2b2c090a1b30311a333435360838393a3b04143ee1" +
		"4142434445464748495152535455565758596263646566676869707172737475" +
		"767778808a8b8c8d8e8f906a9b9c9d9e9fa0aaabac4aaeafb0b1b2b3b4b5b6b7" +
		"b8b9babbbca1bebfcacbcccdcecfdadbdcdddedfeaebecedeeeffafbfcfdfeff")
	asciiToIBM = table("" +
		"00010203372d2e2f1605250b0c0d0e0f101112133c3d322618193f271c1d1e1f" +
		"405a7f7b5b6c507d4d5d5c4e6b604b61f0f1f2f3f4f5f6f7f8f97a5e4c7e6e6f" +
		"7cc1c2c3c4c5c6c7c8c9d1d2d3d4d5d6d7d8d9e2e3e4e5e6e7e8e9ade0bd5f6d" +
		"79818283848586878889919293949596979899a2a3a4a5a6a7a8a9c04fd0a107" +
		"202122232415061728292a2b2c090a1b30311a333435360838393a3b04143ee1" +
		"4142434445464748495152535455565758596263646566676869707172737475" +
		"767778808a8b8c8d8e8f909a9b9c9d9e9fa0aaabacadaeafb0b1b2b3b4b5b6b7" +
		"b8b9babbbcbdbebfcacbcccdcecfdadbdcdddedfeaebecedeeeffafbfcfdfeff")
)

// table decodes 512 hex digits, or returns the identity for "".
func table(h string) [256]byte {
	var t [256]byte
	if h == "" {
		for i := range t {
			t[i] = byte(i)
		}
		return t
	}
	if n, err := hex.Decode(t[:], []byte(h)); err != nil || n != 256 {
		panic("ddargs: bad conversion table")
	}
	return t
}
