package arch

import (
	"archive/tar"
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what ReadPackage accepts; see the package documentation.
const (
	// MaxPkgInfoSize bounds .PKGINFO.
	MaxPkgInfoSize = 1 << 20
	// MaxEntries bounds the entries of the tar archive (the largest
	// Arch packages have about 100,000 files).
	MaxEntries = 500_000
	// MaxPathLen bounds an entry name (Linux's PATH_MAX).
	MaxPathLen = 4096
	// MaxFilesSize bounds the file list: the bytes of all names in
	// Pkg.Files, plus one per name.
	MaxFilesSize = 64 << 20
	// MaxExpansion and ExpansionSlack bound the decompressed tar stream:
	// at every point at most MaxExpansion times the compressed bytes
	// read so far plus ExpansionSlack.
	MaxExpansion   = 100
	ExpansionSlack = 64 << 20
	// MaxWindowSize bounds the window of a zstd frame (the largest pacman
	// decodes with libzstd's default limit, zstd --long) and the
	// dictionary of an xz block (xz -9 uses 64 MiB).
	MaxWindowSize = 128 << 20
)

// Pkg is what ReadPackage learns from one package file.
type Pkg struct {
	// Info is the parsed .PKGINFO.
	Info *PkgInfo
	// Files is the list repo-add writes into the package's files entry:
	// the names of all entries but those starting with '.' (.PKGINFO,
	// .BUILDINFO, .MTREE, .INSTALL, .CHANGELOG and any other, which pacman
	// does not install either), directories with a trailing '/', a
	// backslash written as two (as bsdtar -t prints it), sorted bytewise
	// and without duplicates (repo-add's LC_ALL=C sort -u).
	Files []string
	// Compression is "zst", "xz" or "gz".
	Compression string
	// MD5 and SHA256 are lower-case hex digests of the whole file.
	MD5, SHA256 string
	// Size is the size of the whole file in bytes.
	Size int64
}

// ReadPackage reads one package from r to EOF, hashing every byte, and
// returns its .PKGINFO (checked by ParsePkgInfo), file list, compression,
// digests and size. The compression is found by magic bytes; the whole
// stream is decompressed (checking its checksums) within the bounds of
// the package documentation, and nothing after it is allowed.
//
// Errors wrap format.ErrInvalidPackage or format.ErrPackageTooLarge
// (through this package's sentinels) and say what is wrong where, except
// an error returned by r.Read, which is returned wrapped as it is, even if
// the data before it was already found invalid.
func ReadPackage(r io.Reader) (*Pkg, error) {
	src := &hashedSource{r: r, md5: md5.New(), sha256: sha256.New()}
	pr := &packageReader{src: src, br: bufio.NewReaderSize(src, 64<<10)}
	p, err := pr.read()
	if src.err != nil {
		return nil, fmt.Errorf("arch: reading the package: %w", src.err)
	}
	if err != nil {
		return nil, err
	}
	p.MD5 = hex.EncodeToString(src.md5.Sum(nil))
	p.SHA256 = hex.EncodeToString(src.sha256.Sum(nil))
	p.Size = src.n
	return p, nil
}

// hashedSource hashes and counts what is read from r and keeps the first
// error r returns other than io.EOF.
type hashedSource struct {
	r           io.Reader
	md5, sha256 hash.Hash
	n           int64
	err         error
}

func (s *hashedSource) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if n > 0 {
		s.md5.Write(p[:n])
		s.sha256.Write(p[:n])
		s.n += int64(n)
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// packageReader reads one package.
type packageReader struct {
	src *hashedSource
	br  *bufio.Reader
	// comp is the compression ("zst", "xz", "gz").
	comp string
	// in is the compressed stream, out the decompressed one.
	in  *compressedInput
	out *boundedOutput
	// dicts is the total of the xz dictionaries allocated.
	dicts int64
}

// read reads the package to EOF.
func (pr *packageReader) read() (*Pkg, error) {
	comp, err := pr.detect()
	if err != nil {
		return nil, err
	}
	pr.comp = comp
	pr.in = &compressedInput{r: pr.br}
	dec, closeDecoder, err := pr.decoder()
	if err != nil {
		return nil, pr.streamError(err)
	}
	defer closeDecoder()
	pr.out = &boundedOutput{r: dec, in: pr.in}
	p, err := pr.readTar()
	if err != nil {
		return nil, err
	}
	// The rest of the stream after the tar archive: its padding, the
	// compression's checks, more frames or members.
	if _, err := io.Copy(io.Discard, pr.out); err != nil {
		return nil, pr.streamError(err)
	}
	if n, _ := io.Copy(io.Discard, pr.br); n > 0 {
		return nil, packageErrorf(ErrCorruptArchive, "%d bytes after the end of the %s stream", n, pr.comp)
	}
	p.Compression = comp
	return p, nil
}

// readTar reads the tar archive and returns the package with its
// .PKGINFO and file list.
func (pr *packageReader) readTar() (*Pkg, error) {
	// archive/tar takes an archive that ends inside the padding of its
	// last entry for one that ends cleanly; libarchive, and so pacman,
	// calls it truncated. Counting what the tar reader consumed tells
	// them apart: a clean end falls on a block boundary.
	in := &countingReader{r: pr.out}
	tr := tar.NewReader(in)
	p := &Pkg{}
	entries, filesSize := 0, 0
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if in.n%blockSize != 0 {
				return nil, pr.tarError(io.ErrUnexpectedEOF, entries, last)
			}
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			return nil, pr.tarError(err, entries, last)
		}
		entries++
		if entries > MaxEntries {
			return nil, packageErrorf(ErrTooLarge, "more than %d entries", MaxEntries)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // metadata for the entries after it, not an entry
		}
		if err := checkEntry(h); err != nil {
			return nil, err
		}
		name := h.Name
		last = name
		if name[0] == '.' {
			if strings.TrimSuffix(name, "/") != ".PKGINFO" {
				continue // .BUILDINFO, .MTREE, .INSTALL, …
			}
			if p.Info != nil {
				return nil, packageErrorf(ErrCorruptArchive, "a second .PKGINFO entry")
			}
			if p.Info, err = pr.readPkgInfo(tr, h, entries); err != nil {
				return nil, err
			}
			continue
		}
		file := strings.ReplaceAll(name, `\`, `\\`)
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(file, "/") {
			file += "/"
		}
		filesSize += len(file) + 1
		if filesSize > MaxFilesSize {
			return nil, packageErrorf(ErrTooLarge, "file list longer than %d bytes", MaxFilesSize)
		}
		p.Files = append(p.Files, file)
	}
	if p.Info == nil {
		if entries == 0 {
			return nil, packageErrorf(ErrCorruptArchive, "an empty tar archive, without .PKGINFO")
		}
		return nil, packageErrorf(ErrCorruptArchive, "no .PKGINFO entry")
	}
	slices.Sort(p.Files)
	p.Files = slices.Compact(p.Files)
	return p, nil
}

// blockSize is the size of a tar block: headers, and entries padded.
const blockSize = 512

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readPkgInfo reads and parses the .PKGINFO entry h.
func (pr *packageReader) readPkgInfo(tr *tar.Reader, h *tar.Header, entries int) (*PkgInfo, error) {
	switch {
	case h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink:
		return nil, packageErrorf(ErrCorruptArchive, ".PKGINFO is a link to %q, not a regular file", shortText(h.Linkname))
	case h.Typeflag != tar.TypeReg:
		return nil, packageErrorf(ErrCorruptArchive, ".PKGINFO is not a regular file (type %q)", h.Typeflag)
	case h.Name != ".PKGINFO":
		return nil, packageErrorf(ErrCorruptArchive, ".PKGINFO entry named %q: pacman reads only an entry named exactly .PKGINFO", h.Name)
	case h.Size > MaxPkgInfoSize:
		return nil, packageErrorf(ErrTooLarge, ".PKGINFO of %d bytes exceeds %d bytes", h.Size, MaxPkgInfoSize)
	}
	data := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, pr.tarError(err, entries, h.Name)
	}
	info, err := ParsePkgInfo(data)
	if err != nil {
		return nil, packageContext(err, ".PKGINFO")
	}
	return info, nil
}

// checkEntry checks an entry's name and type.
func checkEntry(h *tar.Header) error {
	name := h.Name
	switch {
	case len(name) > MaxPathLen:
		return packageErrorf(ErrTooLarge, "entry name of %d bytes (%q) exceeds %d bytes", len(name), shortText(name), MaxPathLen)
	case name == "":
		return packageErrorf(ErrCorruptArchive, "entry with an empty name")
	case !utf8.ValidString(name):
		return packageErrorf(ErrCorruptArchive, "entry %q: name is not valid UTF-8", shortText(name))
	case name[0] == '/':
		return packageErrorf(ErrCorruptArchive, "entry %q is an absolute path", shortText(name))
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return packageErrorf(ErrCorruptArchive, "entry %q: name holds control character %U (file lists are line-based)", shortText(name), c)
		}
	}
	trimmed := strings.TrimSuffix(name, "/")
	elements := strings.Split(trimmed, "/")
	switch {
	case slices.Contains(elements, ".."):
		return packageErrorf(ErrCorruptArchive, "entry %q escapes the package (a \"..\" element)", shortText(name))
	case slices.Contains(elements, "") || slices.Contains(elements, "."):
		return packageErrorf(ErrCorruptArchive, "entry %q is not a clean relative path: an empty or \".\" element (pacman installs nothing whose name starts with '.', such as \"./usr\")", shortText(name))
	}
	switch h.Typeflag {
	case tar.TypeDir:
	case tar.TypeReg, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		if trimmed != name {
			return packageErrorf(ErrCorruptArchive, "entry %q ends with '/' but is not a directory", shortText(name))
		}
	default:
		return packageErrorf(ErrCorruptArchive, "entry %q has unsupported type %q", shortText(name), h.Typeflag)
	}
	return nil
}

// tarError turns an error of the tar reader into one of this package's,
// after entries entries, the last named last.
func (pr *packageReader) tarError(err error, entries int, last string) error {
	if pr.out.err != nil {
		return pr.streamError(pr.out.err)
	}
	var pe *packageError
	if errors.As(err, &pe) {
		return err
	}
	where := "in its first entry"
	if last != "" {
		where = fmt.Sprintf("in or after entry %q", shortText(last))
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return packageErrorf(ErrTruncated, "the tar archive ends early, %s", where)
	case entries == 0:
		return packageErrorf(ErrCorruptArchive, "the %s stream does not hold a tar archive: %v", pr.comp, err)
	}
	return packageErrorf(ErrCorruptArchive, "tar archive, %s: %v", where, err)
}
