package rpm

import (
	"fmt"

	"github.com/packyard/packyard/internal/format"
)

// sentinel is an exported error value of this package: a fixed message and
// the format-level error it belongs to.
type sentinel struct {
	msg  string
	kind error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.kind }

// Sentinel errors returned (wrapped, with the detail) by Parse. Each one
// wraps format.ErrInvalidPackage or format.ErrPackageTooLarge, so both
// errors.Is(err, ErrCorruptHeader) and errors.Is(err,
// format.ErrInvalidPackage) hold.
var (
	// ErrNotRPM means the input does not start with an RPM lead.
	ErrNotRPM error = &sentinel{"rpm: not an RPM package", format.ErrInvalidPackage}
	// ErrTruncated means the input ends inside the lead or the headers.
	ErrTruncated error = &sentinel{"rpm: truncated package", format.ErrInvalidPackage}
	// ErrCorruptHeader means the signature or main header is malformed.
	ErrCorruptHeader error = &sentinel{"rpm: corrupt header", format.ErrInvalidPackage}
	// ErrInvalidMetadata means the header is well-formed but holds values
	// that cannot be published: control characters (createrepo_c refuses
	// them too), characters XML cannot represent, a missing name, or a
	// name that is not usable in a path.
	ErrInvalidMetadata error = &sentinel{"rpm: invalid package metadata", format.ErrInvalidPackage}
	// ErrHeaderTooLarge means a header exceeds MaxHeaderEntries,
	// MaxHeaderDataSize, MaxSignatureEntries, MaxSignatureDataSize or
	// MaxTagValues.
	ErrHeaderTooLarge error = &sentinel{"rpm: header too large", format.ErrPackageTooLarge}
	// ErrTooManyFiles means the package lists more than MaxFiles files.
	ErrTooManyFiles error = &sentinel{"rpm: too many files", format.ErrPackageTooLarge}
	// ErrTooManyDependencies means the package has more than
	// MaxDependencies dependency entries of all kinds together.
	ErrTooManyDependencies error = &sentinel{"rpm: too many dependencies", format.ErrPackageTooLarge}
)

// parseError carries a detailed message and unwraps to one of the
// sentinels.
type parseError struct {
	msg  string
	kind error
}

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return e.kind }

// errorf returns an error of the given sentinel kind whose message is
// "rpm: " followed by the formatted detail.
func errorf(kind error, f string, args ...any) error {
	return &parseError{msg: "rpm: " + fmt.Sprintf(f, args...), kind: kind}
}
