package deb

import (
	"strconv"
	"strings"
)

// Version is a Debian package version, [epoch:]upstream_version[-debian_revision],
// as Debian Policy 5.6.12 defines it:
// https://www.debian.org/doc/debian-policy/ch-controlfields.html#version
type Version struct {
	// Epoch is the number before the first colon, "" when absent.
	Epoch string
	// Upstream is the upstream_version.
	Upstream string
	// Revision is the debian_revision after the last hyphen, "" when
	// absent.
	Revision string
}

// String returns the version as it is written.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != "" {
		s = v.Epoch + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// maxEpoch is the largest epoch dpkg accepts (INT_MAX).
const maxEpoch = 1<<31 - 1

// ParseVersion parses a version as Debian Policy 5.6.12 and dpkg's
// parseversion define it: an optional epoch of decimal digits (at most
// 2147483647, as dpkg) ended by the first colon; an upstream version that
// starts with a digit and holds only ASCII letters, digits and
// ". + ~ - :"; an optional revision after the last hyphen holding only
// ASCII letters, digits and ". + ~". Since the epoch ends at the first
// colon and the revision starts after the last hyphen, an upstream version
// can only hold a colon when there is an epoch and a hyphen when there is
// a revision. No whitespace is allowed anywhere. Errors wrap
// ErrInvalidVersion.
func ParseVersion(s string) (Version, error) {
	fail := func(f string, args ...any) (Version, error) {
		return Version{}, debErrorf(ErrInvalidVersion, "invalid version %q: "+f, append([]any{s}, args...)...)
	}
	if s == "" {
		return fail("empty")
	}
	if strings.ContainsAny(s, " \t\n\r\v\f") {
		return fail("contains whitespace")
	}
	v := splitVersion(s)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		epoch := s[:i]
		switch {
		case epoch == "":
			return fail("empty epoch before ':'")
		case !isDigits(epoch):
			return fail("epoch %q is not a number", epoch)
		}
		if n, err := strconv.ParseUint(epoch, 10, 64); err != nil || n > maxEpoch {
			return fail("epoch %q is larger than %d", epoch, maxEpoch)
		}
		if i == len(s)-1 {
			return fail("nothing after the epoch")
		}
	}
	if strings.HasSuffix(s, "-") {
		return fail("empty revision after the last '-'")
	}
	switch {
	case v.Upstream == "":
		return fail("empty upstream version")
	case !isDigit(v.Upstream[0]):
		return fail("upstream version %q does not start with a digit", v.Upstream)
	}
	for _, c := range v.Upstream {
		if !isAlnum(c) && !strings.ContainsRune(".+~-:", c) {
			return fail("upstream version %q contains %q (allowed: letters, digits and . + ~ - :)", v.Upstream, c)
		}
	}
	for _, c := range v.Revision {
		if !isAlnum(c) && !strings.ContainsRune(".+~", c) {
			return fail("revision %q contains %q (allowed: letters, digits and . + ~)", v.Revision, c)
		}
	}
	return v, nil
}

// splitVersion splits s into epoch, upstream version and revision without
// checking them: the epoch is what precedes the first colon if that is
// all digits, the revision what follows the last hyphen. For a valid
// version it gives what ParseVersion gives.
func splitVersion(s string) Version {
	var v Version
	if i := strings.IndexByte(s, ':'); i > 0 && isDigits(s[:i]) {
		v.Epoch, s = s[:i], s[i+1:]
	}
	if j := strings.LastIndexByte(s, '-'); j >= 0 {
		v.Upstream, v.Revision = s[:j], s[j+1:]
	} else {
		v.Upstream = s
	}
	return v
}

// CompareVersions orders two versions as dpkg does (dpkg_version_compare,
// https://git.dpkg.org/cgit/dpkg/dpkg.git/tree/lib/dpkg/version.c):
// epochs as numbers (absent is 0), then upstream versions, then revisions
// (absent is empty, which equals "0"), both compared piece by piece. A
// piece is a run of non-digits followed by a run of digits; non-digits
// compare character by character, '~' before the end of the string before
// letters before everything else; digits compare as numbers. It returns
// -1, 0 or 1.
//
// Input that ParseVersion refuses is split the same way as valid input
// (epoch only when all digits) and compared by the same rules, so that
// CompareVersions never panics and orders every string consistently.
func CompareVersions(a, b string) int {
	if a == b {
		return 0
	}
	va, vb := splitVersion(a), splitVersion(b)
	if c := compareEpochs(va.Epoch, vb.Epoch); c != 0 {
		return c
	}
	if c := compareVersionPart(va.Upstream, vb.Upstream); c != 0 {
		return c
	}
	return compareVersionPart(va.Revision, vb.Revision)
}

// compareEpochs compares two digit strings as numbers of any size.
func compareEpochs(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

// versionCharOrder is dpkg's order(): digits and the end of the string
// weigh 0, '~' sorts first, then letters, then every other character.
func versionCharOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := int(s[i])
	switch {
	case isDigit(s[i]):
		return 0
	case isAlnum(rune(c)):
		return c
	case c == '~':
		return -1
	}
	return c + 256
}

// compareVersionPart is dpkg's verrevcmp.
func compareVersionPart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := versionCharOrder(a, i), versionCharOrder(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c rune) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
