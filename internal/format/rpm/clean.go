package rpm

import (
	"strings"
	"unicode/utf8"
)

// cleaner turns header strings into strings XML can hold, the way
// createrepo_c does, and records the first string it must refuse.
type cleaner struct {
	err error
}

// clean refuses C0 control characters other than tab, newline and
// carriage return (createrepo_c refuses the whole package for them),
// converts strings that are not valid UTF-8 from ISO-8859-1 (createrepo_c's
// cr_latin1_to_utf8, which also drops bytes 0x80–0xBF), and refuses U+FFFE
// and U+FFFF, which XML cannot represent.
func (c *cleaner) clean(what, s string) string {
	if c.err != nil {
		return s
	}
	if hasControl(s) {
		c.fail(what, s)
		return s
	}
	if !utf8.ValidString(s) {
		s = latin1ToUTF8(s)
	}
	if hasNonXML(s) {
		c.err = errorf(ErrInvalidMetadata, "%s %q contains U+FFFE or U+FFFF, which XML cannot represent", what, s)
	}
	return s
}

func (c *cleaner) fail(what, s string) {
	if c.err != nil {
		return
	}
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			c.err = errorf(ErrInvalidMetadata, "%s %q contains control character %#02x (createrepo_c refuses such packages)", what, s, s[i])
			return
		}
	}
}

func isControl(b byte) bool {
	return b < 0x20 && b != '\t' && b != '\n' && b != '\r'
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			return true
		}
	}
	return false
}

// hasNonXML reports whether valid UTF-8 s holds U+FFFE or U+FFFF.
func hasNonXML(s string) bool {
	return strings.Contains(s, "\uFFFE") || strings.Contains(s, "\uFFFF")
}

// latin1ToUTF8 is createrepo_c's cr_latin1_to_utf8: ASCII stays (control
// characters other than tab, newline and carriage return are dropped),
// bytes 0x80–0xBF are dropped as misencoded CP-1252, bytes 0xC0–0xFF
// become their ISO-8859-1 characters.
func latin1ToUTF8(s string) string {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x80:
			if !isControl(c) {
				b = append(b, c)
			}
		case c < 0xC0:
		default:
			b = append(b, 0xC3, c&0x3F|0x80)
		}
	}
	return string(b)
}
