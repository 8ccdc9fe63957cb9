// Package upstream reads the index files of repositories made by other
// tools (createrepo_c's repomd.xml and primary.xml, APT's Release and
// Packages, pacman's NAME.db) for the package files they name and the
// digests they give them. Mirrors and proxies use it to know what to
// fetch and what the fetched bytes must hash to.
//
// Everything here is pure (a reader in, entries out) and treats every
// byte as hostile: sizes are bounded, decompression is bounded, and no
// path that fails CheckPath is ever returned.
package upstream

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrInvalid wraps every error that means an index is malformed.
var ErrInvalid = errors.New("invalid upstream index")

// ErrTooLarge is an index (or one of its entries) past its bound.
var ErrTooLarge = errors.New("upstream index too large")

// Limits bounding what is read.
const (
	// MaxPointer bounds a pointer file read whole (repomd.xml, Release).
	MaxPointer = 16 << 20
	// MaxIndex bounds the decompressed bytes of one streamed index.
	MaxIndex = 4 << 30
	// maxEntry bounds one package's entry (a primary.xml <package>
	// token, a Packages stanza line, a desc file).
	maxEntry = 1 << 20
)

// Entry is one package file an index names.
type Entry struct {
	// Name, Version and Arch identify the package as the index gives
	// them (Version is the whole version string: epoch:ver-rel for rpm
	// and deb, pkgver for pacman).
	Name, Version, Arch string
	// Path is relative to the repository root (rpm, deb) or to the
	// database's directory (pacman).
	Path string
	// SHA256 is lower-case hex; Size is -1 when the index gives none.
	SHA256 string
	Size   int64
	// Signature is a detached signature the index carries (pacman's
	// %PGPSIG%, decoded), nil if none.
	Signature []byte
}

// IndexFile is one file a pointer file names (repomd.xml data, a Release
// file's SHA256 list).
type IndexFile struct {
	// Type is repomd.xml's data type ("primary"); "" for APT.
	Type   string
	Path   string
	SHA256 string
	Size   int64
}

// CheckPath refuses a path that could leave the repository: absolute,
// with a "." or ".." segment, a backslash, a NUL, a scheme or an empty
// segment.
func CheckPath(p string) error {
	if p == "" || len(p) > 4096 {
		return fmt.Errorf("%w: path %q is empty or too long", ErrInvalid, p)
	}
	if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00?#") || strings.Contains(p, "://") {
		return fmt.Errorf("%w: path %q is not a relative path inside the repository", ErrInvalid, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: path %q is not a relative path inside the repository", ErrInvalid, p)
		}
	}
	return nil
}

// isHex64 reports whether s is 64 lower-case hex digits.
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Decompress returns a reader of r's content, chosen by its magic number
// (gzip, zstd, xz, bzip2, or none), that fails past MaxIndex bytes. Close
// releases the decoder.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	var out io.Reader
	closer := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrInvalid, err)
		}
		out = z
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrInvalid, err)
		}
		out, closer = z, z.Close
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: xz: %v", ErrInvalid, err)
		}
		out = z
	case bytes.HasPrefix(magic, []byte("BZh")):
		out = bzip2.NewReader(br)
	default:
		out = br
	}
	return &bounded{r: out, n: MaxIndex, close: closer}, nil
}

type bounded struct {
	r     io.Reader
	n     int64
	close func()
}

func (b *bounded) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, int64(MaxIndex))
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

func (b *bounded) Close() error { b.close(); return nil }
