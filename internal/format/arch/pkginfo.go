package arch

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PkgInfo is the parsed .PKGINFO of a package: every key makepkg's
// write_pkginfo writes
// (https://gitlab.archlinux.org/pacman/pacman/-/blob/v6.1.0/scripts/makepkg.sh.in).
// Values are as written, not trimmed or normalised (pacman shows them so;
// repo-add collapses runs of whitespace into one space when it copies them
// into a database).
type PkgInfo struct {
	PkgName, PkgBase, PkgVer, PkgDesc, URL, Packager, Arch string
	// BuildDate is builddate, in seconds since the Unix epoch; Size is
	// size, the installed size in bytes. Both are 0 when absent (size is
	// required).
	BuildDate, Size int64
	// The multi-valued keys, in file order: license, replaces, group,
	// conflict, provides, backup, depend, optdepend, makedepend and
	// checkdepend.
	License, Replaces, Group, Conflict, Provides, Backup, Depend, OptDepend, MakeDepend, CheckDepend []string
	// Extra keeps keys this parser does not know (xdata, which makepkg
	// 6.1 writes as "xdata = pkgtype=pkg", and any future key) in order,
	// as "key = value" lines.
	Extra []string
}

// list returns the field of a multi-valued key, nil for other keys.
func (p *PkgInfo) list(key string) *[]string {
	switch key {
	case "license":
		return &p.License
	case "replaces":
		return &p.Replaces
	case "group":
		return &p.Group
	case "conflict":
		return &p.Conflict
	case "provides":
		return &p.Provides
	case "backup":
		return &p.Backup
	case "depend":
		return &p.Depend
	case "optdepend":
		return &p.OptDepend
	case "makedepend":
		return &p.MakeDepend
	case "checkdepend":
		return &p.CheckDepend
	}
	return nil
}

// scalar returns the field of a single-valued key (a scratch string for
// the numeric ones), nil for other keys.
func (p *PkgInfo) scalar(key string) *string {
	switch key {
	case "pkgname":
		return &p.PkgName
	case "pkgbase":
		return &p.PkgBase
	case "pkgver":
		return &p.PkgVer
	case "pkgdesc":
		return &p.PkgDesc
	case "url":
		return &p.URL
	case "packager":
		return &p.Packager
	case "arch":
		return &p.Arch
	case "builddate", "size":
		return new(string) // parsed as numbers below
	}
	return nil
}

// ParsePkgInfo parses a .PKGINFO file as makepkg writes it and libalpm
// reads it (parse_descfile in lib/libalpm/be_package.c):
//
//   - at most MaxPkgInfoSize bytes of valid UTF-8 without control
//     characters other than the newline ending each line (no CR, tab or
//     NUL);
//   - empty lines and lines starting with '#' are skipped;
//   - every other line is "key = value": a key of lower-case ASCII
//     letters, digits and '_' starting with a letter, then " = ", then the
//     value, kept as it is (possibly empty); "key =" is an empty value;
//   - pkgname, pkgbase, pkgver, pkgdesc, url, packager, arch, builddate and
//     size appear at most once; license, replaces, group, conflict,
//     provides, backup, depend, optdepend, makedepend and checkdepend may
//     repeat and may not be empty; other keys go to Extra;
//   - pkgname, pkgver, arch and size are required; pkgname (and pkgbase if
//     not empty) is a package name as PKGBUILD(5) defines it: lower-case
//     ASCII letters, digits and "@._+-", not starting with '-' or '.';
//     pkgver is [epoch:]pkgver-pkgrel as makepkg's lint checks its parts
//     (see checkFullVersion); arch is lower-case ASCII letters, digits and
//     '_' (x86_64, aarch64, any, …); size and builddate are decimal
//     numbers.
//
// PKGBUILD(5): https://man.archlinux.org/man/PKGBUILD.5. Errors wrap
// ErrInvalidPkgInfo or ErrTooLarge and name the line.
func ParsePkgInfo(data []byte) (*PkgInfo, error) {
	if len(data) > MaxPkgInfoSize {
		return nil, packageErrorf(ErrTooLarge, ".PKGINFO of %d bytes exceeds %d bytes", len(data), MaxPkgInfoSize)
	}
	if err := checkPkgInfoBytes(data); err != nil {
		return nil, err
	}
	p := &PkgInfo{}
	seen := map[string]int{}
	var buildDate, size string
	text := string(data)
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, " = ")
		if !ok {
			key, ok = strings.CutSuffix(line, " =")
		}
		if !ok {
			return nil, packageErrorf(ErrInvalidPkgInfo, "line %d: %q is not \"key = value\"", n, shortText(line))
		}
		if !isPkgInfoKey(key) {
			return nil, packageErrorf(ErrInvalidPkgInfo, "line %d: invalid key %q (lower-case letters, digits and '_')", n, shortText(key))
		}
		if l := p.list(key); l != nil {
			if value == "" {
				return nil, packageErrorf(ErrInvalidPkgInfo, "line %d: %s with an empty value", n, key)
			}
			*l = append(*l, value)
			continue
		}
		field := p.scalar(key)
		if field == nil {
			p.Extra = append(p.Extra, key+" = "+value)
			continue
		}
		if first, dup := seen[key]; dup {
			return nil, packageErrorf(ErrInvalidPkgInfo, "line %d: %s given twice (first on line %d)", n, key, first)
		}
		seen[key] = n
		switch key {
		case "builddate":
			buildDate = value
		case "size":
			size = value
		default:
			*field = value
		}
	}
	for _, key := range []string{"pkgname", "pkgver", "arch", "size"} {
		if _, ok := seen[key]; !ok {
			return nil, packageErrorf(ErrInvalidPkgInfo, "no %s", key)
		}
	}
	line := func(key string) string { return "line " + strconv.Itoa(seen[key]) }
	if problem := packageNameProblem(p.PkgName); problem != "" {
		return nil, packageErrorf(ErrInvalidPkgInfo, "%s: pkgname %q: %s", line("pkgname"), shortText(p.PkgName), problem)
	}
	if p.PkgBase != "" {
		if problem := packageNameProblem(p.PkgBase); problem != "" {
			return nil, packageErrorf(ErrInvalidPkgInfo, "%s: pkgbase %q: %s", line("pkgbase"), shortText(p.PkgBase), problem)
		}
	}
	if problem := checkFullVersion(p.PkgVer); problem != "" {
		return nil, packageErrorf(ErrInvalidPkgInfo, "%s: pkgver %q: %s", line("pkgver"), shortText(p.PkgVer), problem)
	}
	if !isArchName(p.Arch) {
		return nil, packageErrorf(ErrInvalidPkgInfo, "%s: arch %q: not an architecture (lower-case letters, digits and '_', such as x86_64, aarch64 or any)", line("arch"), shortText(p.Arch))
	}
	var ok bool
	if p.Size, ok = parseDecimal(size); !ok {
		return nil, packageErrorf(ErrInvalidPkgInfo, "%s: size %q is not a number of bytes", line("size"), shortText(size))
	}
	if _, given := seen["builddate"]; given {
		if p.BuildDate, ok = parseDecimal(buildDate); !ok {
			return nil, packageErrorf(ErrInvalidPkgInfo, "%s: builddate %q is not a number of seconds", line("builddate"), shortText(buildDate))
		}
	}
	return p, nil
}

// checkPkgInfoBytes refuses invalid UTF-8 and control characters other
// than newline.
func checkPkgInfoBytes(data []byte) error {
	lineOf := func(i int) int { return bytes.Count(data[:i], []byte{'\n'}) + 1 }
	for i, c := range data {
		switch {
		case c == '\n' || c >= 0x20 && c != 0x7f:
		case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
			return packageErrorf(ErrInvalidPkgInfo, "line %d ends with CRLF; .PKGINFO has LF line ends", lineOf(i))
		default:
			return packageErrorf(ErrInvalidPkgInfo, "line %d: control character %#02x", lineOf(i), c)
		}
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
		return packageErrorf(ErrInvalidPkgInfo, "line %d: invalid UTF-8", lineOf(i))
	}
	return nil
}

// isPkgInfoKey reports whether s is a key: [a-z][a-z0-9_]*.
func isPkgInfoKey(s string) bool {
	if s == "" || !isLowerLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerLetter(c) && !isASCIIDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// packageNameProblem says what is wrong with a package name against
// PKGBUILD(5), "" if nothing.
func packageNameProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case s[0] == '-' || s[0] == '.':
		return "starts with '" + s[:1] + "'"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerLetter(c) && !isASCIIDigit(c) && !strings.ContainsRune("@._+-", rune(c)) {
			return "contains " + strconv.QuoteRune(rune(c)) + " (allowed: lower-case letters, digits and @ . _ + -)"
		}
	}
	return ""
}

// checkFullVersion says what is wrong with a version as makepkg's
// get_full_version writes it, "" if nothing: an optional epoch (decimal
// digits) and ':', then pkgver (printable ASCII without whitespace, '/',
// ':' or '-', makepkg's lint_pkgver), '-', then pkgrel (digits, or digits
// '.' digits, makepkg's lint_pkgrel).
func checkFullVersion(v string) string {
	if v == "" {
		return "empty"
	}
	if epoch, rest, ok := strings.Cut(v, ":"); ok {
		if !isASCIIDigits(epoch) {
			return "epoch " + strconv.Quote(epoch) + " is not a number"
		}
		v = rest
	}
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return "no pkgrel: a version is [epoch:]pkgver-pkgrel, such as 1.0-1"
	}
	ver, rel := v[:i], v[i+1:]
	if ver == "" {
		return "empty pkgver before '-'"
	}
	for j := 0; j < len(ver); j++ {
		if c := ver[j]; c <= ' ' || c > '~' || c == '/' || c == ':' || c == '-' {
			return "pkgver " + strconv.Quote(ver) + " contains " + strconv.QuoteRune(rune(c)) + " (no whitespace, '/', ':' or '-'; ASCII only)"
		}
	}
	whole, frac, dot := strings.Cut(rel, ".")
	if !isASCIIDigits(whole) || dot && !isASCIIDigits(frac) {
		return "pkgrel " + strconv.Quote(rel) + " is not a number or number.number"
	}
	return ""
}

// isArchName reports whether s is an architecture name: [a-z0-9_]+.
func isArchName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerLetter(c) && !isASCIIDigit(c) && c != '_' {
			return false
		}
	}
	return s != ""
}

// parseDecimal parses a non-negative decimal int64 written with digits
// only.
func parseDecimal(s string) (int64, bool) {
	if !isASCIIDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isLowerLetter(c byte) bool { return 'a' <= c && c <= 'z' }

func isASCIIDigit(c byte) bool { return '0' <= c && c <= '9' }

func isASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isASCIIDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
