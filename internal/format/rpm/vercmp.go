package rpm

import (
	"strconv"

	"github.com/packyard/packyard/internal/format"
)

// Compare orders two versions of a package as rpm does
// (rpmVersionCompare): by epoch as a number (absent is 0), then version and
// release with rpmvercmp.
func (f *Format) Compare(a, b format.Identity) int {
	if c := compareEpoch(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	if c := vercmp(a.Version, b.Version); c != 0 {
		return c
	}
	return vercmp(a.Release, b.Release)
}

func compareEpoch(a, b string) int {
	if a == "" {
		a = "0"
	}
	if b == "" {
		b = "0"
	}
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return vercmp(a, b)
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// vercmp is rpm's rpmvercmp (rpmio/rpmvercmp.c, rpm 4.18): versions are
// compared segment by segment, where a segment is a run of ASCII digits
// or a run of ASCII letters and anything else separates segments. Numeric
// segments compare as numbers and are newer than alphabetic ones; '~'
// sorts before anything, even the end of the string; '^' sorts after the
// end of the string but before anything else. It returns -1, 0 or 1.
//
// github.com/sassoftware/go-rpmutils' Vercmp does not know '^', hence this
// implementation.
func vercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		ca, cb := at(a, i), at(b, j)

		if ca == '~' || cb == '~' {
			if ca != '~' {
				return 1
			}
			if cb != '~' {
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if ca == '^' || cb == '^' {
			switch {
			case i == len(a):
				return -1
			case j == len(b):
				return 1
			case ca != '^':
				return 1
			case cb != '^':
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if i == len(a) || j == len(b) {
			break
		}

		si, sj := i, j
		isNum := isDigit(a[i])
		if isNum {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		// a's segment is never empty here; b's is empty when the segment
		// types differ, and numeric is newer than alphabetic.
		if sj == j {
			if isNum {
				return 1
			}
			return -1
		}
		sa, sb := a[si:i], b[sj:j]
		if isNum {
			for len(sa) > 0 && sa[0] == '0' {
				sa = sa[1:]
			}
			for len(sb) > 0 && sb[0] == '0' {
				sb = sb[1:]
			}
			if len(sa) != len(sb) {
				if len(sa) > len(sb) {
					return 1
				}
				return -1
			}
		}
		if sa != sb {
			if sa < sb {
				return -1
			}
			return 1
		}
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i >= len(a):
		return -1
	}
	return 1
}

func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
