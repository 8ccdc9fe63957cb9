package deb

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
)

// Bounds on what ReadDeb accepts; see the package documentation.
const (
	// MaxControlSize bounds the control file, decompressed.
	MaxControlSize = 1 << 20
	// MaxControlTarSize bounds the decompressed control.tar member.
	MaxControlTarSize = 4 << 20
	// MaxControlMemberSize bounds the control.tar member as stored in the
	// archive.
	MaxControlMemberSize = 4 << 20
	// MaxDebianBinarySize bounds the debian-binary member ("2.0\n").
	MaxDebianBinarySize = 1 << 10
	// MaxZstdWindow bounds the window of a zstd control member: the
	// window of zstd level 19, dpkg-deb's largest but for the "ultra"
	// levels. The decoder allocates the whole window up front.
	MaxZstdWindow = 8 << 20
)

// Deb is what ReadDeb learns from one .deb (or .udeb) file.
type Deb struct {
	// Control is the control file's one paragraph.
	Control *Paragraph
	// MD5 and SHA256 are lower-case hex digests of the whole file.
	MD5, SHA256 string
	// Size is the size of the whole file in bytes.
	Size int64
}

// ar archive layout.
const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
	// arHeaderEnd ends every member header.
	arHeaderEnd = "`\n"
)

// ReadDeb reads one binary package from r to EOF, hashing every byte, and
// returns its control paragraph (checked with CheckBinary), digests and
// size. It decompresses only the control.tar member, within the bounds
// of the package documentation, and skips data.tar.
//
// Errors wrap format.ErrInvalidPackage or format.ErrPackageTooLarge
// (through this package's sentinels) and say what is wrong where, except
// an error returned by r.Read, which is returned wrapped as it is.
func ReadDeb(r io.Reader) (*Deb, error) {
	src := &debSource{r: r, md5: md5.New(), sha256: sha256.New()}
	dr := &debReader{src: src, br: bufio.NewReaderSize(src, 64<<10)}
	p, err := dr.control()
	if err != nil {
		return nil, err
	}
	return &Deb{
		Control: p,
		MD5:     hex.EncodeToString(src.md5.Sum(nil)),
		SHA256:  hex.EncodeToString(src.sha256.Sum(nil)),
		Size:    src.n,
	}, nil
}

// ReadDebStored is ReadDeb for a file whose digests are known (packyard
// computed them while storing it): it reads the archive's member headers
// and its control.tar member, and seeks over the rest instead of reading
// and hashing it. size is the file's size. It accepts and refuses exactly
// what ReadDeb does, with the same messages; the Deb it returns has no
// digests.
func ReadDebStored(r io.ReadSeeker, size int64) (*Deb, error) {
	src := &debSource{r: r}
	// A small buffer: only the member headers and the control member are
	// read (the first fill of a large one would read into data.tar).
	dr := &debReader{src: src, br: bufio.NewReaderSize(src, 8<<10), seeker: r, size: size}
	p, err := dr.control()
	if err != nil {
		return nil, err
	}
	return &Deb{Control: p, Size: size}, nil
}

// control reads the archive and returns its control paragraph, checked
// with CheckBinary. A read error comes first, even if the data before it
// was already found to be invalid: it may say why (the upload was cut or
// is over a size limit).
func (dr *debReader) control() (*Paragraph, error) {
	control, err := dr.read()
	if dr.src.err != nil {
		return nil, fmt.Errorf("deb: reading the package: %w", dr.src.err)
	}
	if err != nil {
		return nil, err
	}
	p, err := ParseParagraph(control)
	if err == nil {
		err = CheckBinary(p)
	}
	if err != nil {
		return nil, debContext(err, "control")
	}
	return p, nil
}

// debSource hashes (unless its hashes are nil) and counts what is read
// from r and keeps the first error r returns other than io.EOF.
type debSource struct {
	r           io.Reader
	md5, sha256 hash.Hash
	n           int64
	err         error
}

func (s *debSource) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if n > 0 && s.md5 != nil {
		s.md5.Write(p[:n])
		s.sha256.Write(p[:n])
	}
	if n > 0 {
		s.n += int64(n)
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// debReader walks the ar archive.
type debReader struct {
	src *debSource
	br  *bufio.Reader
	// off is the archive offset of what br returns next.
	off int64
	// seeker, when set, is src's reader, of size bytes: skip seeks
	// instead of reading (ReadDebStored).
	seeker io.Seeker
	size   int64
}

// arMember is one member header.
type arMember struct {
	// name is the name as dpkg sees it: trailing spaces and one trailing
	// slash removed.
	name string
	size int64
	// off is the offset of the member's data.
	off int64
}

// read reads the archive to EOF and returns the control file.
func (d *debReader) read() ([]byte, error) {
	if err := d.readMagic(); err != nil {
		return nil, err
	}
	m, ok, err := d.nextMember()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, debErrorf(ErrNotDeb, "an empty ar archive, without debian-binary member")
	}
	if m.name != "debian-binary" {
		return nil, debErrorf(ErrNotDeb, "first archive member is %q, not debian-binary", m.name)
	}
	if err := d.readDebianBinary(m); err != nil {
		return nil, err
	}
	var control []byte
	haveControl := false
	for {
		m, ok, err := d.nextMember()
		if err != nil {
			return nil, err
		}
		if !ok {
			if !haveControl {
				return nil, debErrorf(ErrCorruptArchive, "no control.tar member")
			}
			return nil, debErrorf(ErrCorruptArchive, "no data.tar member")
		}
		switch {
		case strings.HasPrefix(m.name, "_"):
			// Members that older programs may ignore (deb(5)).
			if err := d.skip(m); err != nil {
				return nil, err
			}
		case strings.HasPrefix(m.name, "control.tar"):
			if haveControl {
				return nil, debErrorf(ErrCorruptArchive, "two control.tar members (second: %q)", m.name)
			}
			if control, err = d.readControlMember(m); err != nil {
				return nil, err
			}
			haveControl = true
		case strings.HasPrefix(m.name, "data.tar"):
			if !haveControl {
				return nil, debErrorf(ErrCorruptArchive, "member %q comes before control.tar", m.name)
			}
			if err := d.readDataMember(m); err != nil {
				return nil, err
			}
			return control, d.readTrailing()
		case !haveControl:
			return nil, debErrorf(ErrCorruptArchive, "unexpected member %q before control.tar", m.name)
		default:
			return nil, debErrorf(ErrCorruptArchive, "unexpected member %q before data.tar", m.name)
		}
	}
}

func (d *debReader) readMagic() error {
	var b [len(arMagic)]byte
	n, err := io.ReadFull(d.br, b[:])
	d.off += int64(n)
	switch {
	case n == 0 && err == io.EOF:
		return debErrorf(ErrNotDeb, "empty file")
	case !strings.HasPrefix(arMagic, string(b[:n])):
		return debErrorf(ErrNotDeb, "does not start with %q, the ar archive magic", arMagic)
	case err != nil:
		return debErrorf(ErrTruncated, "file ends inside the ar archive magic")
	}
	return nil
}

// nextMember reads a member header; ok is false at the end of the
// archive.
func (d *debReader) nextMember() (m arMember, ok bool, err error) {
	var h [arHeaderSize]byte
	at := d.off
	n, err := io.ReadFull(d.br, h[:])
	d.off += int64(n)
	if n == 0 && err == io.EOF {
		return m, false, nil
	}
	if err != nil {
		return m, false, debErrorf(ErrTruncated, "file ends inside the archive member header at offset %d (%d of %d bytes)", at, n, arHeaderSize)
	}
	name := strings.TrimRight(string(h[:16]), " ")
	name = strings.TrimSuffix(name, "/")
	if string(h[58:60]) != arHeaderEnd {
		return m, false, debErrorf(ErrCorruptArchive, "archive member header at offset %d (%q) does not end with %q", at, name, arHeaderEnd)
	}
	// dpkg reads only the size; apt (apt-ftparchive, apt install ./x.deb)
	// also refuses an archive whose date, owner, group or mode are not
	// numbers.
	fields := []struct {
		what       string
		start, end int
		base       int64
	}{{"date", 16, 28, 10}, {"owner", 28, 34, 10}, {"group", 34, 40, 10}, {"mode", 40, 48, 8}, {"size", 48, 58, 10}}
	for _, f := range fields {
		v, ok := arNumber(h[f.start:f.end], f.base)
		if !ok {
			return m, false, debErrorf(ErrCorruptArchive, "archive member %q at offset %d: %s field %q is not a number", name, at, f.what, h[f.start:f.end])
		}
		m.size = v // size is last
	}
	m.name, m.off = name, d.off
	return m, true, nil
}

// arNumber parses a numeric member header field: digits in the given
// base, left-aligned, padded with spaces (leading spaces are accepted, as
// dpkg and apt do); all spaces is 0.
func arNumber(field []byte, base int64) (int64, bool) {
	digits, pad, _ := strings.Cut(strings.TrimLeft(string(field), " "), " ")
	if strings.Trim(pad, " ") != "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(digits); i++ {
		c := int64(digits[i]) - '0'
		if c < 0 || c >= base {
			return 0, false
		}
		v = v*base + c
	}
	return v, true
}

// end returns the archive offset after m and its padding.
func (m arMember) end() int64 { return m.off + m.size + m.size&1 }

// skip hashes and discards the rest of m and its padding (or seeks over
// it, with a seeker).
func (d *debReader) skip(m arMember) error {
	if d.seeker != nil {
		return d.seekPast(m)
	}
	for left := m.end() - d.off; left > 0; {
		n, err := d.br.Discard(int(min(left, 1<<30)))
		d.off += int64(n)
		left -= int64(n)
		if err != nil {
			if m.off+m.size > d.off {
				return debErrorf(ErrTruncated, "file ends inside archive member %q (%d of %d bytes)", m.name, d.off-m.off, m.size)
			}
			return debErrorf(ErrTruncated, "file ends before the padding byte of archive member %q", m.name)
		}
	}
	return nil
}

// seekPast is skip for a reader of known size: the same checks, from
// the size instead of the end of the stream.
func (d *debReader) seekPast(m arMember) error {
	end := m.end()
	switch {
	case m.off+m.size > d.size:
		return debErrorf(ErrTruncated, "file ends inside archive member %q (%d of %d bytes)", m.name, max(d.size, d.off)-m.off, m.size)
	case end > d.size:
		return debErrorf(ErrTruncated, "file ends before the padding byte of archive member %q", m.name)
	case end-d.off <= int64(d.br.Buffered()):
		_, _ = d.br.Discard(int(end - d.off))
	default:
		if _, err := d.seeker.Seek(end, io.SeekStart); err != nil {
			d.src.err = err
			return err
		}
		d.br.Reset(d.src)
	}
	d.off = end
	return nil
}

func (d *debReader) readDebianBinary(m arMember) error {
	if m.size > MaxDebianBinarySize {
		return debErrorf(ErrTooLarge, "debian-binary member of %d bytes exceeds %d bytes", m.size, MaxDebianBinarySize)
	}
	b := make([]byte, m.size)
	n, err := io.ReadFull(d.br, b)
	d.off += int64(n)
	if err != nil {
		return debErrorf(ErrTruncated, "file ends inside the debian-binary member (%d of %d bytes)", n, m.size)
	}
	if err := d.skip(m); err != nil {
		return err
	}
	line, _, ok := bytes.Cut(b, []byte{'\n'})
	major, minor, dot := bytes.Cut(line, []byte{'.'})
	if !ok || !dot || !isDigits(string(major)) || !isDigits(string(minor)) {
		return debErrorf(ErrCorruptArchive, "debian-binary holds %q, not a format version such as \"2.0\\n\"", truncateText(string(b)))
	}
	if strings.TrimLeft(string(major), "0") != "2" {
		return debErrorf(ErrCorruptArchive, "unsupported package format version %s (only 2.x is supported)", truncateText(string(line)))
	}
	return nil
}

// Compressions of the members, by name suffix (deb(5)).
var (
	controlCompressions = []string{"", ".gz", ".xz", ".zst"}
	dataCompressions    = []string{"", ".gz", ".xz", ".zst", ".bz2", ".lzma"}
)

func (d *debReader) readDataMember(m arMember) error {
	ext := m.name[len("data.tar"):]
	if !slices.Contains(dataCompressions, ext) {
		return debErrorf(ErrCorruptArchive, "member %q: unknown compression (data.tar may be uncompressed, .gz, .xz, .zst, .bz2 or .lzma)", m.name)
	}
	if m.size == 0 {
		return debErrorf(ErrCorruptArchive, "member %q is empty", m.name)
	}
	return d.skip(m)
}

// readTrailing skips the members after data.tar, which deb(5) says to
// ignore, checking only that they are well-formed ar members.
func (d *debReader) readTrailing() error {
	for {
		m, ok, err := d.nextMember()
		if err != nil || !ok {
			return err
		}
		if err := d.skip(m); err != nil {
			return err
		}
	}
}
