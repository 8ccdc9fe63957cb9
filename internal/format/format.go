// Package format defines what every package format (rpm, deb, arch)
// implements: parsing a package file into an identity and pre-rendered index
// fragments, and describing how a repository's index files are assembled
// from those fragments.
//
// Formats are pure: an io.Reader in, bytes out; no database, no HTTP, no
// logging. The repository service owns ordering, chunking, compression,
// storage and publishing, so that every format gets the same O(change)
// publishing for free.
package format

import (
	"errors"
	"io"
	"time"
)

// ErrInvalidPackage wraps every error that means "these bytes are not a
// valid package of this format"; the API answers it with 400.
var ErrInvalidPackage = errors.New("invalid package")

// ErrPackageTooLarge wraps errors for structures over a format's size
// bounds (a header of gigabytes, too many files); the API answers 413.
var ErrPackageTooLarge = errors.New("package structure too large")

// Identity is the parsed identity of one package file.
type Identity struct {
	Name    string
	Epoch   string
	Version string
	Release string
	Arch    string
}

// Package is the result of parsing one package file.
type Package struct {
	Identity
	Summary string
	// Path is where the package is served, relative to the repository root.
	Path string
	// Data holds the format's parsed metadata until Render; opaque to callers.
	Data any
}

// FileInfo is what is known about a package file once all of it was read.
type FileInfo struct {
	SHA256 string
	Size   int64
	// Time is when the file entered the repository (createrepo_c's
	// time/@file, the file's mtime).
	Time time.Time
}

// UploadParams are per-upload options a format may need (the APT
// distribution and component, for instance).
type UploadParams map[string]string

// Entry is one package as an index sees it.
type Entry struct {
	ID    int64
	Scope string
	Arch  string
	Path  string
	// Identity is the package's name and version (Identity.Arch is Arch).
	Identity Identity
	// Fragments by kind, as Format.Render returned them.
	Fragments map[string][]byte
}

// Encoding names how a stream is written.
type Encoding string

// Encodings of an assembled stream.
const (
	Raw  Encoding = ""
	Gzip Encoding = "gz"
	Zstd Encoding = "zst"
	Xz   Encoding = "xz"
)

// Stream describes one index file assembled from package fragments: a
// header, the fragments of every matching entry in Path order, a footer.
// Each chunk of entries is encoded on its own (a gzip member, a zstd frame)
// so that a publish re-encodes only chunks with a changed entry.
type Stream struct {
	// Name identifies the stream within a repository (e.g. "primary").
	Name string
	// Fragment is the fragment kind concatenated.
	Fragment string
	// Match selects the entries in the stream; nil matches all.
	Match func(e *Entry) bool
	// Header returns the bytes before the first entry, given the number of
	// matching entries.
	Header func(count int) []byte
	// Footer is written after the last entry.
	Footer []byte
	// Encodings lists the encodings to produce.
	Encodings []Encoding
	// LegacyHashes asks for MD5 and SHA-1 digests too (APT's Release
	// lists them).
	LegacyHashes bool
}

// Blob is one encoding of an assembled stream: the digest and size of the
// whole, and the stored blobs whose concatenation it is (set by the
// repository service; formats only copy SHA256 and Size).
type Blob struct {
	SHA256 string
	Size   int64
	Parts  []string
	// MD5 and SHA1 are set for streams with LegacyHashes.
	MD5, SHA1 string
	// State is the marshalled SHA-256 state after the whole output, for
	// Signer.DetachBinaryState: a large assembled file can be signed
	// without being read again.
	State []byte
}

// Built is an assembled stream: its raw (decoded) digest and size and its
// encoded outputs.
type Built struct {
	Name    string
	Raw     Blob
	Encoded map[Encoding]Blob
}

// File is one file of a published generation that is not a package.
type File struct {
	Path        string
	ContentType string
	// Either Data holds new content, or Digest/Size name an existing blob
	// (an assembled stream).
	Data   []byte
	SHA256 string
	Size   int64
}

// Format is one package format.
type Format interface {
	// Name returns the format name ("rpm").
	Name() string
	// Parse reads one package from r. It reads only as much as it needs;
	// the caller hashes the whole stream. Errors wrap ErrInvalidPackage or
	// ErrPackageTooLarge.
	Parse(r io.Reader, filename string, params UploadParams) (*Package, error)
	// Scope returns the package's scope within a repository from the
	// upload parameters ("" for formats without scopes).
	Scope(p *Package, params UploadParams) (string, error)
	// Render renders p's index fragments once the whole file is known.
	Render(p *Package, f FileInfo) (map[string][]byte, error)
	// Compare orders two versions of the same package name: <0, 0, >0.
	Compare(a, b Identity) int
	// Streams returns the index streams for a repository holding entries.
	// It is called on every publish with every live entry, in upload
	// order; it must only look at Scope, Arch, Path and Identity.
	Streams(entries []*Entry, opts PublishOptions) []Stream
	// Finish returns the remaining files of a generation (repomd.xml, the
	// stream files under their final paths, Release, …) from the assembled
	// streams.
	Finish(built []Built, opts PublishOptions) ([]File, error)
}

// Digests are digests of a whole package file that packyard computed
// itself while storing the file: never taken from a client or an upstream
// index.
type Digests struct {
	MD5, SHA256 string
}

// StoredParser is implemented by formats that parse a stored package
// file with less work when its Digests are known: r reads the file from
// its start and seeks, size is its size. The result equals Parse's on
// the same file.
type StoredParser interface {
	ParseStored(r io.ReadSeeker, size int64, filename string, params UploadParams, d Digests) (*Package, error)
}

// PublishOptions carries repository-level settings into Finish.
type PublishOptions struct {
	RepoName string
	// Time is the publish time (timestamps in repomd.xml, Release Date).
	Time time.Time
	// Revision is a monotonically increasing revision number.
	Revision int64
	// Signer signs the generation's metadata; nil publishes it unsigned.
	Signer Signer
	// PublicKey is the armored public key (or keys, during a rotation)
	// of Signer, for formats that publish it beside their metadata.
	PublicKey []byte
	// Settings are the repository's format settings (APT architectures,
	// origin, label…), as the repository's configuration gives them.
	Settings Settings
}

// Settings are per-repository options a format may use when it publishes.
type Settings struct {
	// Architectures are always indexed, with or without packages (APT).
	Architectures []string
	// Origin and Label go into APT's Release files.
	Origin, Label string
	// ValidFor, when not zero, adds Valid-Until = Date + ValidFor (APT).
	ValidFor time.Duration
}

// Signer makes OpenPGP signatures over metadata; each method signs with
// every key of the repository (two during a rotation).
type Signer interface {
	// DetachArmored returns an armored detached signature
	// (repomd.xml.asc, Release.gpg).
	DetachArmored(data []byte) ([]byte, error)
	// DetachBinary returns a binary detached signature (pacman's .sig).
	DetachBinary(data []byte) ([]byte, error)
	// ClearSign returns data clearsigned (InRelease).
	ClearSign(data []byte) ([]byte, error)
	// DetachBinaryState returns a binary detached signature over data
	// given by the SHA-256 state after all of it (Blob.State).
	DetachBinaryState(sha256State []byte) ([]byte, error)
}

// PackageAliaser is implemented by formats that serve a package under more
// paths than its own: pacman's "any" packages are asked for in every
// architecture's directory. PackageAlias returns the package path that a
// requested path stands for.
type PackageAliaser interface {
	PackageAlias(path string) (string, bool)
}

// FileChecker is implemented by formats whose headers state how large the
// whole file is; the repository service calls CheckFile once all of the
// file was read, before Render, and refuses the package on an error.
type FileChecker interface {
	CheckFile(p *Package, f FileInfo) error
}

// Sidecars is implemented by formats that serve small files derived from a
// package beside it (pacman's NAME.pkg.tar.zst.sig): Sidecar maps a
// requested path to the package's path and the fragment kind whose bytes
// are the file.
type Sidecars interface {
	Sidecar(path string) (pkgPath, kind string, ok bool)
}
