package arch

import "strings"

// Vercmp orders two package versions as pacman's vercmp(8) and
// alpm_pkg_vercmp do
// (https://gitlab.archlinux.org/pacman/pacman/-/blob/v6.1.0/lib/libalpm/version.c):
// it returns -1, 0 or 1 as a is older than, the same as or newer than b.
//
// A version is split as parseEVR splits it: the epoch is the leading
// digits when a ':' follows them (absent or empty is "0"), the release
// (pkgrel) what follows the last '-' after the epoch's digits. Epochs,
// then versions, then releases are compared with rpmvercmp; the releases
// only when both versions have one, so "1.0" and "1.0-1" are equal.
//
// rpmvercmp compares runs of ASCII letters or digits one by one; the
// characters between them only count by their number (a longer
// separator is newer). Digit runs compare as numbers of any length,
// letter runs bytewise, and a digit run is newer than a letter run. When
// one side runs out, the other is newer unless what is left of it starts
// with a letter: "1.0a" < "1.0b" < "1.0" < "1.0.1". Only ASCII letters
// and digits make runs; every other byte is a separator. Vercmp never
// panics, whatever the input.
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	ea, va, ra, hasA := splitEVR(a)
	eb, vb, rb, hasB := splitEVR(b)
	if c := rpmvercmp(ea, eb); c != 0 {
		return c
	}
	if c := rpmvercmp(va, vb); c != 0 || !hasA || !hasB {
		return c
	}
	return rpmvercmp(ra, rb)
}

// splitEVR splits a version into epoch, version and release as alpm's
// parseEVR does; hasRel says whether there is a release (possibly empty,
// for a version ending in '-').
func splitEVR(s string) (epoch, ver, rel string, hasRel bool) {
	end := 0
	for end < len(s) && isASCIIDigit(s[end]) {
		end++
	}
	ver = s
	epoch = "0"
	// The release is searched for from the end of the epoch's digits,
	// before the ':' is taken off, as parseEVR does.
	dash := strings.LastIndexByte(s[end:], '-')
	if dash >= 0 {
		dash += end
	}
	if end < len(s) && s[end] == ':' {
		if end > 0 {
			epoch = s[:end]
		}
		ver = s[end+1:]
		if dash >= 0 {
			dash -= end + 1
		}
	}
	if dash >= 0 {
		ver, rel, hasRel = ver[:dash], ver[dash+1:], true
	}
	return epoch, ver, rel, hasRel
}

func isASCIIAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isASCIIAlnum(c byte) bool { return isASCIIAlpha(c) || isASCIIDigit(c) }

// rpmvercmp is alpm's rpmvercmp on two version parts.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		si, sj := i, j
		for i < len(a) && !isASCIIAlnum(a[i]) {
			i++
		}
		for j < len(b) && !isASCIIAlnum(b[j]) {
			j++
		}
		if i == len(a) || j == len(b) {
			break
		}
		// Separators of different lengths decide.
		if i-si != j-sj {
			if i-si < j-sj {
				return -1
			}
			return 1
		}
		// A run of digits or of letters, as a's run starts.
		num := isASCIIDigit(a[i])
		ei, ej := i, j
		if num {
			for ei < len(a) && isASCIIDigit(a[ei]) {
				ei++
			}
			for ej < len(b) && isASCIIDigit(b[ej]) {
				ej++
			}
		} else {
			for ei < len(a) && isASCIIAlpha(a[ei]) {
				ei++
			}
			for ej < len(b) && isASCIIAlpha(b[ej]) {
				ej++
			}
		}
		ra, rb := a[i:ei], b[j:ej]
		if rb == "" {
			// The runs are of different kinds: digits are newer.
			if num {
				return 1
			}
			return -1
		}
		if num {
			ra, rb = strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(ra) != len(rb) {
				if len(ra) > len(rb) {
					return 1
				}
				return -1
			}
		}
		if c := strings.Compare(ra, rb); c != 0 {
			return c
		}
		i, j = ei, ej
	}
	if i == len(a) && j == len(b) {
		return 0
	}
	// What is left of one side: a letter run never beats the end.
	if i == len(a) && (j == len(b) || !isASCIIAlpha(b[j])) || i < len(a) && isASCIIAlpha(a[i]) {
		return -1
	}
	return 1
}
