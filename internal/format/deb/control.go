package deb

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on a control file.
const (
	// MaxControlFields bounds the fields of one paragraph; real control
	// files have a few dozen.
	MaxControlFields = 1000
	// MaxFieldNameLength bounds a field name.
	MaxFieldNameLength = 100
)

// Field is one field of a deb822 paragraph.
//
// Value is the text after the colon on the field's first line with
// leading and trailing spaces and tabs removed, followed, for each
// continuation line, by "\n" and that line with its trailing spaces and
// tabs removed and its leading whitespace kept. A continuation line is
// never empty (it starts with a space or tab), so a field is written back
// exactly as Name + ": " + Value + "\n" when the first line is not empty,
// and as Name + ":" + Value + "\n" when it is (Value then starts with
// "\n"); Value is "" only for a field with an empty first line and no
// continuation lines.
type Field struct {
	Name  string
	Value string
}

// Paragraph is one deb822 paragraph with its fields in file order.
type Paragraph struct {
	Fields []Field
}

// Get returns the value of the named field (case-insensitive name), "" if
// absent.
func (p *Paragraph) Get(name string) string {
	v, _ := p.lookup(name)
	return v
}

// lookup returns the value of the named field and whether it is present.
func (p *Paragraph) lookup(name string) (string, bool) {
	if p == nil {
		return "", false
	}
	for _, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// ParseParagraph parses exactly one deb822 paragraph, the syntax of a
// binary package's control file (deb822(5), deb-control(5)):
//
//   - the data is valid UTF-8 of at most MaxControlSize bytes, without NUL
//     or other C0 control characters except tab and newline; CRLF line
//     ends are refused;
//   - a field line is "Name: value"; a name is 1 to MaxFieldNameLength
//     printable US-ASCII characters other than ':' and space and does not
//     start with '#' or '-'; names are unique regardless of case;
//   - a continuation line starts with a space or tab; a line of only
//     whitespace inside the paragraph is refused, as dpkg does;
//   - empty lines may precede and follow the paragraph, a second
//     paragraph is refused, and so are '#' comment lines (dpkg does not
//     allow them in a control file);
//   - at most MaxControlFields fields.
//
// See Field for how values are represented. Errors wrap ErrInvalidControl
// or ErrTooLarge and name the line.
func ParseParagraph(data []byte) (*Paragraph, error) {
	if len(data) > MaxControlSize {
		return nil, debErrorf(ErrTooLarge, "control file of %d bytes exceeds %d bytes", len(data), MaxControlSize)
	}
	if err := checkControlBytes(data); err != nil {
		return nil, err
	}
	p := &Paragraph{}
	names := make(map[string]int)
	var value strings.Builder
	flush := func() {
		if n := len(p.Fields); n > 0 {
			p.Fields[n-1].Value = value.String()
		}
		value.Reset()
	}
	const (
		before = iota // no field yet
		inside        // in the paragraph
		after         // after the paragraph's end
	)
	state := before
	text := string(data)
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if strings.Trim(line, " \t") == "" {
			if line != "" && state == inside {
				return nil, debErrorf(ErrInvalidControl, "line %d: blank line in the value of field %s (write \" .\" for an empty line in a multi-line value)", n, p.Fields[len(p.Fields)-1].Name)
			}
			if state == inside {
				state = after
			}
			continue
		}
		switch {
		case state == after:
			return nil, debErrorf(ErrInvalidControl, "line %d: a second paragraph; a control file holds exactly one", n)
		case line[0] == ' ' || line[0] == '\t':
			if state != inside {
				return nil, debErrorf(ErrInvalidControl, "line %d: continuation line without a field before it", n)
			}
			value.WriteByte('\n')
			value.WriteString(strings.TrimRight(line, " \t"))
			continue
		case line[0] == '#':
			return nil, debErrorf(ErrInvalidControl, "line %d: comment lines are not allowed in a control file", n)
		}
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, debErrorf(ErrInvalidControl, "line %d: no colon in %q: a field line is \"Name: value\" and a continuation line starts with a space", n, truncateText(line))
		}
		if problem := fieldNameProblem(name); problem != "" {
			return nil, debErrorf(ErrInvalidControl, "line %d: %s", n, problem)
		}
		key := strings.ToLower(name)
		if first, dup := names[key]; dup {
			return nil, debErrorf(ErrInvalidControl, "line %d: duplicate field %s (first on line %d)", n, name, first)
		}
		if len(p.Fields) == MaxControlFields {
			return nil, debErrorf(ErrTooLarge, "line %d: more than %d fields", n, MaxControlFields)
		}
		names[key] = n
		flush()
		value.WriteString(strings.Trim(v, " \t"))
		p.Fields = append(p.Fields, Field{Name: name})
		state = inside
	}
	if len(p.Fields) == 0 {
		return nil, debErrorf(ErrInvalidControl, "no fields")
	}
	flush()
	return p, nil
}

// checkControlBytes refuses invalid UTF-8, CRLF line ends and control
// characters other than tab and newline.
func checkControlBytes(data []byte) error {
	lineOf := func(i int) int { return bytes.Count(data[:i], []byte{'\n'}) + 1 }
	for i, c := range data {
		if c >= 0x20 || c == '\t' || c == '\n' {
			continue
		}
		if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			return debErrorf(ErrInvalidControl, "line %d ends with CRLF; control files have LF line ends", lineOf(i))
		}
		return debErrorf(ErrInvalidControl, "line %d: control character %#02x", lineOf(i), c)
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		return debErrorf(ErrInvalidControl, "line %d: invalid UTF-8", lineOf(i))
	}
	return nil
}

// fieldNameProblem says what is wrong with a field name against
// deb822(5), "" if nothing.
func fieldNameProblem(name string) string {
	switch {
	case name == "":
		return "empty field name"
	case len(name) > MaxFieldNameLength:
		return fmt.Sprintf("field name %q longer than %d characters", truncateText(name), MaxFieldNameLength)
	case name[0] == '-':
		return fmt.Sprintf("field name %q starts with '-'", name)
	}
	for _, c := range name {
		if c <= ' ' || c > '~' {
			return fmt.Sprintf("field name %q contains %q (allowed: printable ASCII other than space and ':')", truncateText(name), c)
		}
	}
	return ""
}

// truncateText shortens s for an error message.
func truncateText(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	for i := n; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return s[:n] + "…"
}

// CheckBinary checks the fields a binary package's control file must have
// (deb-control(5), Debian Policy 5.3,
// https://www.debian.org/doc/debian-policy/ch-controlfields.html#binary-package-control-files-debian-control):
//
//   - Package: a package name (Policy 5.6.7): lower-case letters, digits,
//     '+', '-' and '.', at least two characters, starting with a letter or
//     digit;
//   - Version: valid for ParseVersion;
//   - Architecture: one architecture name of lower-case letters, digits and
//     '-' (amd64, arm64, all, kfreebsd-amd64, …);
//   - Maintainer and Description: not empty;
//   - Installed-Size, if present: a non-negative decimal integer;
//   - Source, if present: "name" or "name (version)" with a valid name and
//     version.
//
// Errors wrap ErrInvalidControl or ErrInvalidVersion and name the field.
func CheckBinary(p *Paragraph) error {
	for _, name := range []string{"Package", "Version", "Architecture", "Maintainer", "Description"} {
		if v, ok := p.lookup(name); !ok {
			return debErrorf(ErrInvalidControl, "missing field %s", name)
		} else if strings.TrimSpace(v) == "" {
			return debErrorf(ErrInvalidControl, "field %s is empty", name)
		}
	}
	if v := p.Get("Package"); !isPackageName(v) {
		return debErrorf(ErrInvalidControl, "field Package: invalid package name %q (lower-case letters, digits, '+', '-' and '.', at least two, starting with a letter or digit)", truncateText(v))
	}
	if _, err := ParseVersion(p.Get("Version")); err != nil {
		return debContext(err, "field Version")
	}
	if v := p.Get("Architecture"); !isArchitecture(v) {
		return debErrorf(ErrInvalidControl, "field Architecture: invalid architecture %q (one name such as amd64, arm64 or all)", truncateText(v))
	}
	if v, ok := p.lookup("Installed-Size"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 || !isDigits(v) {
			return debErrorf(ErrInvalidControl, "field Installed-Size: %q is not a size in KiB", truncateText(v))
		}
	}
	if v, ok := p.lookup("Source"); ok {
		if err := checkSource(v); err != nil {
			return debContext(err, "field Source")
		}
	}
	return nil
}

// checkSource checks a binary package's Source field: "name" or
// "name (version)".
func checkSource(v string) error {
	name, ver, hasVersion := strings.Cut(v, " ")
	if !isPackageName(name) {
		return debErrorf(ErrInvalidControl, "invalid source package name %q", truncateText(name))
	}
	if !hasVersion {
		return nil
	}
	ver = strings.TrimLeft(ver, " ")
	if !strings.HasPrefix(ver, "(") || !strings.HasSuffix(ver, ")") {
		return debErrorf(ErrInvalidControl, "%q is not \"name\" or \"name (version)\"", truncateText(v))
	}
	_, err := ParseVersion(strings.Trim(ver[1:len(ver)-1], " "))
	return err
}

// isPackageName reports whether s is a valid package name (Policy 5.6.7).
func isPackageName(s string) bool {
	if len(s) < 2 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isArchitecture reports whether s is one architecture name.
func isArchitecture(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' }
