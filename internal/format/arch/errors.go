package arch

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/packyard/packyard/internal/format"
)

// packageSentinel is an exported error value of this package: a fixed
// message and the format-level error it belongs to.
type packageSentinel struct {
	msg  string
	kind error
}

func (e *packageSentinel) Error() string { return e.msg }
func (e *packageSentinel) Unwrap() error { return e.kind }

// Sentinel errors returned (wrapped, with the detail) by ReadPackage and
// ParsePkgInfo. Each one wraps format.ErrInvalidPackage or
// format.ErrPackageTooLarge, so both errors.Is(err, ErrTruncated) and
// errors.Is(err, format.ErrInvalidPackage) hold.
var (
	// ErrNotPackage means the input is empty or not compressed with
	// zstd, xz or gzip (an uncompressed tar, bzip2, lz4 …).
	ErrNotPackage error = &packageSentinel{"arch: not a pacman package", format.ErrInvalidPackage}
	// ErrTruncated means the input ends inside the compressed stream, or
	// the tar archive it holds ends inside an entry.
	ErrTruncated error = &packageSentinel{"arch: truncated package", format.ErrInvalidPackage}
	// ErrCorruptArchive means the compressed stream or the tar archive is
	// malformed, or holds an unsafe, unsupported or misplaced entry: an
	// absolute or ".." path, an unsupported entry type, a .PKGINFO that
	// is missing, not a regular file or there twice.
	ErrCorruptArchive error = &packageSentinel{"arch: corrupt package archive", format.ErrInvalidPackage}
	// ErrInvalidPkgInfo means .PKGINFO is not valid: syntax, encoding, a
	// required key missing, an invalid name, version, architecture or
	// number.
	ErrInvalidPkgInfo error = &packageSentinel{"arch: invalid .PKGINFO", format.ErrInvalidPackage}
	// ErrTooLarge means the package exceeds a bound: MaxPkgInfoSize,
	// MaxEntries, MaxPathLen, MaxFilesSize, MaxWindowSize or the
	// decompressed size bound (MaxExpansion).
	ErrTooLarge error = &packageSentinel{"arch: package structure too large", format.ErrPackageTooLarge}
)

// packageError carries a detailed message and unwraps to one of the
// sentinels.
type packageError struct {
	msg  string
	kind error
}

func (e *packageError) Error() string { return e.msg }
func (e *packageError) Unwrap() error { return e.kind }

// packageErrorf returns an error of the given sentinel kind whose message
// is "arch: " followed by the formatted detail.
func packageErrorf(kind error, f string, args ...any) error {
	return &packageError{msg: "arch: " + fmt.Sprintf(f, args...), kind: kind}
}

// packageContext prefixes the detail of err, an error of this package,
// with what names where it was found (".PKGINFO: line 3: …"). Other
// errors are returned as they are.
func packageContext(err error, what string) error {
	var pe *packageError
	if !errors.As(err, &pe) {
		return err
	}
	return &packageError{msg: "arch: " + what + ": " + strings.TrimPrefix(pe.msg, "arch: "), kind: pe.kind}
}

// shortText shortens s for an error message.
func shortText(s string) string {
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
