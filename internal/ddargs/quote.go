package ddargs

import "strings"

// quote renders s as coreutils' quote() does in the C locale
// (gnulib quotearg, locale_quoting_style): inside single quotes, a quote
// or backslash gets a backslash, \a \b \f \n \r \t \v keep their C escapes,
// and other bytes that are not printable ASCII become three-digit octal
// escapes ("\377"). So messages are the same bytes dd prints with LC_ALL=C.
func quote(s string) string {
	// A control byte in cControls is written as a backslash and the
	// letter at its place in cEscapes.
	const cControls, cEscapes = "\a\b\f\n\r\t\v", "abfnrtv"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\a', '\b', '\f', '\n', '\r', '\t', '\v':
			b.WriteByte('\\')
			b.WriteByte(cEscapes[strings.IndexByte(cControls, c)])
		default:
			if c < ' ' || c > '~' {
				b.WriteByte('\\')
				b.WriteByte('0' + c>>6)
				b.WriteByte('0' + (c>>3)&7)
				b.WriteByte('0' + c&7)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}
