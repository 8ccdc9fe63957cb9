package deb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/packyard/packyard/internal/format"
)

// debSentinel is an exported error value of this package: a fixed message
// and the format-level error it belongs to.
type debSentinel struct {
	msg  string
	kind error
}

func (e *debSentinel) Error() string { return e.msg }
func (e *debSentinel) Unwrap() error { return e.kind }

// Sentinel errors returned (wrapped, with the detail) by ReadDeb,
// ParseParagraph, CheckBinary and ParseVersion. Each one wraps
// format.ErrInvalidPackage or format.ErrPackageTooLarge, so both
// errors.Is(err, ErrTruncated) and errors.Is(err, format.ErrInvalidPackage)
// hold.
var (
	// ErrNotDeb means the input is not an ar archive whose first member
	// is debian-binary.
	ErrNotDeb error = &debSentinel{"deb: not a Debian binary package", format.ErrInvalidPackage}
	// ErrTruncated means the input ends inside the archive: in a member
	// header, a member or its padding byte.
	ErrTruncated error = &debSentinel{"deb: truncated package", format.ErrInvalidPackage}
	// ErrCorruptArchive means the ar archive or the control.tar member is
	// malformed: a bad member header, members missing or out of order, an
	// unsupported format version or compression, a corrupt compressed
	// stream or tar archive, an unsafe or duplicate entry, no control file.
	ErrCorruptArchive error = &debSentinel{"deb: corrupt package archive", format.ErrInvalidPackage}
	// ErrInvalidControl means the control file is not one valid deb822
	// paragraph, or lacks or holds invalid fields of a binary package.
	ErrInvalidControl error = &debSentinel{"deb: invalid control file", format.ErrInvalidPackage}
	// ErrInvalidVersion means a version string does not follow Debian
	// Policy 5.6.12.
	ErrInvalidVersion error = &debSentinel{"deb: invalid version", format.ErrInvalidPackage}
	// ErrTooLarge means the package's metadata exceeds a bound:
	// MaxDebianBinarySize, MaxControlMemberSize, MaxControlTarSize,
	// MaxControlSize, MaxControlFields or the xz and zstd memory bounds.
	ErrTooLarge error = &debSentinel{"deb: package metadata too large", format.ErrPackageTooLarge}
)

// debError carries a detailed message and unwraps to one of the sentinels.
type debError struct {
	msg  string
	kind error
}

func (e *debError) Error() string { return e.msg }
func (e *debError) Unwrap() error { return e.kind }

// debErrorf returns an error of the given sentinel kind whose message is
// "deb: " followed by the formatted detail.
func debErrorf(kind error, f string, args ...any) error {
	return &debError{msg: "deb: " + fmt.Sprintf(f, args...), kind: kind}
}

// debContext prefixes the detail of err, an error of this package, with
// what names the place it was found in ("control: line 3: ..."). Other
// errors are returned as they are.
func debContext(err error, what string) error {
	var de *debError
	if !errors.As(err, &de) {
		return err
	}
	return &debError{msg: "deb: " + what + ": " + strings.TrimPrefix(de.msg, "deb: "), kind: de.kind}
}
