package arch

import (
	"bytes"
	"errors"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/packyard/packyard/internal/format/internal/xzread"
)

// Magic bytes of the compressions.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	gzipMagic = []byte{0x1f, 0x8b}
)

// otherCompressions are formats pacman reads that packyard refuses, by
// magic bytes.
var otherCompressions = []struct {
	magic []byte
	name  string
}{
	{[]byte("BZh"), "bzip2 (.pkg.tar.bz2)"},
	{[]byte{0x04, 0x22, 0x4d, 0x18}, "lz4 (.pkg.tar.lz4)"},
	{[]byte("LZIP"), "lzip (.pkg.tar.lz)"},
	{[]byte{0x89, 'L', 'Z', 'O'}, "lzop (.pkg.tar.lzo)"},
	{[]byte("LRZI"), "lrzip (.pkg.tar.lrz)"},
	{[]byte{0x1f, 0x9d}, "compress (.pkg.tar.Z)"},
}

// detect finds the compression by the first bytes.
func (pr *packageReader) detect() (string, error) {
	b, _ := pr.br.Peek(512)
	if len(b) == 0 {
		return "", packageErrorf(ErrNotPackage, "empty file, not a package")
	}
	isZstdSkippable := len(b) >= 4 && b[0]&0xf0 == 0x50 && b[1] == 0x2a && b[2] == 0x4d && b[3] == 0x18
	for _, m := range []struct {
		magic []byte
		name  string
	}{{zstdMagic, "zst"}, {xzMagic, "xz"}, {gzipMagic, "gz"}} {
		switch {
		case bytes.HasPrefix(b, m.magic) || m.name == "zst" && isZstdSkippable:
			return m.name, nil
		case len(b) < len(m.magic) && bytes.HasPrefix(m.magic, b):
			return "", packageErrorf(ErrTruncated, "file of %d bytes ends inside the %s magic", len(b), m.name)
		}
	}
	const use = "packages are accepted compressed with zstd, xz or gzip (PKGEXT .pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz)"
	for _, c := range otherCompressions {
		if bytes.HasPrefix(b, c.magic) {
			return "", packageErrorf(ErrNotPackage, "compressed with %s; %s", c.name, use)
		}
	}
	if len(b) == 512 && string(b[257:262]) == "ustar" {
		return "", packageErrorf(ErrNotPackage, "an uncompressed tar archive; %s", use)
	}
	return "", packageErrorf(ErrNotPackage, "does not start with the zstd, xz or gzip magic; %s", use)
}

// decoder returns the decompressor of pr.in and a function that releases
// it.
func (pr *packageReader) decoder() (io.Reader, func(), error) {
	switch pr.comp {
	case "gz":
		zr, err := gzip.NewReader(pr.in)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case "zst":
		zr, err := zstd.NewReader(pr.in,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(MaxWindowSize))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return xzread.NewReader(pr.in, xzread.Config{Reserve: pr.reserveDictionary}), func() {}, nil
}

// reserveDictionary bounds the dictionary of one xz block, and of all
// blocks together, before it is allocated.
func (pr *packageReader) reserveDictionary(n int64) error {
	if n > MaxWindowSize {
		return packageErrorf(ErrTooLarge, "an xz block needs a dictionary of %d MiB; at most %d MiB are supported", n>>20, MaxWindowSize>>20)
	}
	pr.dicts += n
	if pr.dicts > MaxWindowSize+MaxExpansion*pr.in.n {
		return packageErrorf(ErrTooLarge, "xz blocks need %d MiB of dictionaries in the first %d compressed bytes", pr.dicts>>20, pr.in.n)
	}
	return nil
}

// streamError turns an error of the decompressor into one of this
// package's.
func (pr *packageReader) streamError(err error) error {
	var pe *packageError
	switch {
	case pr.src.err != nil:
		return err // ReadPackage returns the read error
	case errors.Is(err, errExpanded):
		return packageErrorf(ErrTooLarge, "the %s stream decompresses to more than %d bytes from its first %d bytes (at most %d times the compressed size plus %d MiB)",
			pr.comp, pr.out.n, pr.in.n, MaxExpansion, ExpansionSlack>>20)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return packageErrorf(ErrTooLarge, "zstd frame with a window larger than %d MiB", MaxWindowSize>>20)
	case errors.As(err, &pe):
		return err
	case pr.in.eof && errors.Is(err, io.ErrUnexpectedEOF):
		return packageErrorf(ErrTruncated, "file ends inside the %s stream (after %d bytes)", pr.comp, pr.in.n)
	}
	return packageErrorf(ErrCorruptArchive, "%s stream: %v", pr.comp, err)
}

// compressedInput counts the compressed bytes read and notes the end of
// the file.
type compressedInput struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *compressedInput) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// errExpanded is returned by boundedOutput over its bound.
var errExpanded = errors.New("decompressed stream over the expansion bound")

// boundedOutput reads the decompressed stream, returning errExpanded
// once it is longer than MaxExpansion times the compressed bytes read
// plus ExpansionSlack, and keeps the first error other than io.EOF.
type boundedOutput struct {
	r   io.Reader
	in  *compressedInput
	n   int64
	err error
}

func (o *boundedOutput) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.r.Read(p)
	o.n += int64(n)
	switch {
	case o.n > MaxExpansion*o.in.n+ExpansionSlack:
		o.err = errExpanded
		return n, o.err
	case err != nil && err != io.EOF:
		o.err = err
	}
	return n, err
}
