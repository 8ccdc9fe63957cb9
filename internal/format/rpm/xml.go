package rpm

import (
	"strconv"
	"unicode/utf8"
)

// The escaping below reproduces libxml2 2.9's serialisation as
// createrepo_c uses it (xmlNodeDump without a document, UTF-8 output):
// text content escapes '&', '<', '>' and CR (xmlEscapeContent); attribute
// values also escape '"', tab and LF, and write every non-ASCII character
// as a hexadecimal character reference (xmlBufAttrSerializeTxtContent).

// appendText appends s escaped as element content.
func appendText(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#13;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// appendAttr appends s escaped as an attribute value (without quotes).
func appendAttr(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		switch {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '"':
			esc = "&quot;"
		case c == '\n':
			esc = "&#10;"
		case c == '\r':
			esc = "&#13;"
		case c == '\t':
			esc = "&#9;"
		case c >= utf8.RuneSelf:
			b = append(b, s[last:i]...)
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
				// libxml2 writes the bytes of what it cannot take as a
				// character one by one; Parse leaves no such strings.
				b = appendCharRef(b, rune(c))
				i++
			} else {
				b = appendCharRef(b, r)
				i += n
			}
			last = i
			continue
		default:
			i++
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i++
		last = i
	}
	return append(b, s[last:]...)
}

func appendCharRef(b []byte, r rune) []byte {
	b = append(b, "&#x"...)
	b = strconv.AppendUint(b, uint64(r), 16)
	// libxml2 writes upper-case hexadecimal digits.
	for k := len(b) - 1; b[k] != 'x'; k-- {
		if b[k] >= 'a' {
			b[k] -= 'a' - 'A'
		}
	}
	return append(b, ';')
}

// isXMLChar is libxml2's IS_CHAR for non-ASCII characters.
func isXMLChar(r rune) bool {
	return r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// Helpers that append whole elements and attributes.

// appendAttrPair appends ` name="value"`.
func appendAttrPair(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendAttr(b, value)
	return append(b, '"')
}

// appendIntAttr appends ` name="n"`.
func appendIntAttr(b []byte, name string, n int64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '"')
}

// appendTextElem appends indent, <name>text</name> and a newline.
func appendTextElem(b []byte, indent, name, text string) []byte {
	b = append(b, indent...)
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendText(b, text)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>', '\n')
}
