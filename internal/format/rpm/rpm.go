// Package rpm implements format.Format for RPM packages and dnf/yum
// repositories (rpm-md "repodata"): it parses package headers and renders
// primary.xml, filelists.xml, other.xml and repomd.xml byte for byte as
// createrepo_c 0.17 writes them with its defaults (sha256, gzip, changelog
// limit 10, no sqlite databases).
//
// Parse reads only the lead, the signature header and the main header. A
// pre-validator (header.go) bounds and checks them before
// github.com/sassoftware/go-rpmutils decodes them, so that what a crafted
// header claims costs at most 1 MiB until its bytes arrive, and Parse allocates
// at most about ten times the header it read (measured with headers that
// hold MaxFiles files and MaxDependencies dependencies), never more than a
// small multiple of MaxHeaderDataSize.
//
// Strings are made fit for XML as createrepo_c makes them: a string that is
// not valid UTF-8 is converted from ISO-8859-1 (bytes 0x80–0xBF dropped),
// and a package with a C0 control character other than tab, LF and CR in
// any published field is refused (ErrInvalidMetadata), as createrepo_c
// refuses it. Where createrepo_c would write XML that is not well-formed,
// this package differs on purpose:
//
//   - a string that libxml2 takes for UTF-8 but is not (overlong forms,
//     surrogates) is converted like any other non-UTF-8 string;
//   - U+FFFE and U+FFFF make the package invalid (ErrInvalidMetadata);
//   - the version attributes of other.xml, which createrepo_c writes
//     without conversion, are converted like everything else.
//
// Parse also refuses, where createrepo_c would read garbage or crash:
// headers that rpm itself refuses (see header.go), a header that does not
// match its SHA-256 or SHA-1 digest, file lists whose arrays disagree in
// length or point at missing directories, and a name, version, release or
// arch that is empty or contains '/' (or a name starting with '.'), which
// could not be used in Package.Path.
//
// The root elements of primary, filelists and other carry no packages="N"
// attribute. createrepo_c writes it, but no client needs it (libsolv, and
// so dnf and zypper, ignore it; yum uses it for a progress bar only), and
// it sits in the first bytes of each file: with it, adding one package
// would change the start of every file, and the SHA-256 that repomd.xml
// gives for the file and its decompressed content would have to be
// computed over the whole repository again on every publish. Without it
// the publisher resumes hashing after the last unchanged chunk.
//
// repomd.xml lists primary, filelists and other only, each with the
// publish time as its timestamp (createrepo_c uses the files' mtimes).
//
// Specifications followed:
//   - RPM v4 package and header format:
//     https://rpm-software-management.github.io/rpm/manual/format_v4.html
//   - tag numbers and flags: rpm's include/rpm/rpmtag.h and rpmds.h
//   - repodata: createrepo_c's src/parsehdr.c, src/xml_dump*.c, src/misc.c
//     (https://github.com/rpm-software-management/createrepo_c)
package rpm

import (
	"github.com/packyard/packyard/internal/format"
)

var _ format.Format = (*Format)(nil)

// Format is the RPM package format. It holds no state; one value serves
// any number of repositories and goroutines.
//
// It reads RPM v4 packages
// (https://rpm-software-management.github.io/rpm/manual/format_v4.html)
// and writes rpm-md repodata as createrepo_c 0.17 does
// (https://github.com/rpm-software-management/createrepo_c).
type Format struct{}

// New returns the RPM format.
func New() *Format { return &Format{} }

// Name returns "rpm".
func (f *Format) Name() string { return "rpm" }

// Scope returns "": RPM repositories have no scopes.
func (f *Format) Scope(p *format.Package, params format.UploadParams) (string, error) {
	return "", nil
}
