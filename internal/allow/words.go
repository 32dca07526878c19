package allow

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Command splits the client's command line (SSH_ORIGINAL_COMMAND) and
// checks that it runs the program name (by its base name).
func Command(name, line string) ([]string, error) {
	words, err := Words(line)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 || filepath.Base(words[0]) != name {
		return nil, fmt.Errorf("this key may only run %s, not %q", name, line)
	}
	return words, nil
}

// Words splits a command line (the client's, from SSH_ORIGINAL_COMMAND) as a POSIX shell would split plain
// words with quotes, and refuses anything else a shell would interpret.
func Words(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unbalanced quote in the client's command")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if strings.IndexByte("$`", s[i]) >= 0 {
					return nil, fmt.Errorf("shell syntax %q in the client's command", s[i])
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unbalanced quote in the client's command")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte(";&|<>$`(){}*?[]~#!", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q in the client's command", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
