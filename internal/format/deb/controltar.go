package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"github.com/packyard/packyard/internal/format/internal/xzread"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// memberReader reads the data of one archive member and notes whether
// the file ended before it.
type memberReader struct {
	d         *debReader
	left      int64
	truncated bool
}

func (mr *memberReader) Read(p []byte) (int, error) {
	if mr.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > mr.left {
		p = p[:mr.left]
	}
	n, err := mr.d.br.Read(p)
	mr.left -= int64(n)
	mr.d.off += int64(n)
	if err == io.EOF {
		mr.truncated = true
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// errOverBudget is returned by budgetReader once its bound is crossed.
var errOverBudget = errors.New("over the size bound")

// budgetReader returns errOverBudget once more than left bytes were read.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errOverBudget
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errOverBudget
	}
	return n, err
}

// maxBufferedControl bounds the compressed control.tar.xz members held
// whole in memory to size their decoding.
const maxBufferedControl = 1 << 20

// readControlMember decompresses the control.tar member m within the
// bounds and returns its control file.
func (d *debReader) readControlMember(m arMember) ([]byte, error) {
	ext := m.name[len("control.tar"):]
	switch {
	case ext == ".bz2" || ext == ".lzma":
		return nil, debErrorf(ErrCorruptArchive, "member %q: dpkg does not accept %s compression for control.tar (only none, .gz, .xz or .zst)", m.name, ext)
	case !slices.Contains(controlCompressions, ext):
		return nil, debErrorf(ErrCorruptArchive, "member %q: unknown compression (control.tar may be uncompressed, .gz, .xz or .zst)", m.name)
	case m.size == 0:
		return nil, debErrorf(ErrCorruptArchive, "member %q is empty", m.name)
	case m.size > MaxControlMemberSize:
		return nil, debErrorf(ErrTooLarge, "member %q of %d bytes exceeds %d bytes", m.name, m.size, MaxControlMemberSize)
	}
	mr := &memberReader{d: d, left: m.size}
	fail := func(err error) ([]byte, error) { return nil, d.controlError(m, mr, err) }
	var stream io.Reader
	switch ext {
	case "":
		stream = mr
	case ".gz":
		zr, err := gzip.NewReader(mr)
		if err != nil {
			return fail(err)
		}
		defer zr.Close()
		stream = zr
	case ".xz":
		// The member is small: held whole, the size its xz index declares
		// bounds the output, and with it the dictionary (dpkg-deb's
		// streams ask for 8 MiB, which every package would otherwise
		// allocate and clear for a control.tar of a few kilobytes). The
		// reader checks the data against the index as it decodes.
		limit := int64(MaxControlTarSize)
		var src io.Reader = mr
		if m.size <= maxBufferedControl {
			b, err := io.ReadAll(mr)
			if err != nil {
				return fail(err)
			}
			if n, ok := xzread.DeclaredSize(b); ok && n < limit {
				limit = max(n, 1)
			}
			src = bytes.NewReader(b)
		}
		stream = newXZReader(src, limit)
	case ".zst":
		zr, err := zstd.NewReader(mr,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(MaxZstdWindow),
			zstd.WithDecoderMaxMemory(MaxZstdWindow))
		if err != nil {
			return fail(err)
		}
		defer zr.Close()
		stream = zr
	}
	tarStream := &budgetReader{r: stream, left: MaxControlTarSize}
	control, err := readControlTar(tarStream)
	if err != nil {
		return fail(err)
	}
	// Read the rest, which checks the compressed stream's integrity.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return fail(err)
	}
	if mr.left > 0 {
		if _, err := io.Copy(io.Discard, mr); err != nil {
			return fail(err)
		}
	}
	if err := d.skip(m); err != nil {
		return nil, err
	}
	return control, nil
}

// controlError turns an error met while reading the control member into
// one of this package's errors.
func (d *debReader) controlError(m arMember, mr *memberReader, err error) error {
	var de *debError
	switch {
	case d.src.err != nil:
		return err // ReadDeb returns the read error
	case mr.truncated:
		return debErrorf(ErrTruncated, "file ends inside archive member %q (%d of %d bytes)", m.name, m.size-mr.left, m.size)
	case errors.Is(err, errOverBudget):
		return debErrorf(ErrTooLarge, "%s: decompresses to more than %d bytes", m.name, MaxControlTarSize)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return debErrorf(ErrTooLarge, "%s: zstd window larger than %d bytes", m.name, MaxZstdWindow)
	case errors.As(err, &de):
		return debContext(err, m.name)
	}
	return debErrorf(ErrCorruptArchive, "%s: %v", m.name, err)
}

// readControlTar reads a control.tar stream and returns its control
// file, which must be there once, as a regular file. Other entries are
// skipped; no entry name may be absolute or hold a ".." element.
func readControlTar(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	var control []byte
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			return nil, err
		}
		name := h.Name
		switch {
		case name == "":
			return nil, debErrorf(ErrCorruptArchive, "entry with an empty name")
		case strings.HasPrefix(name, "/"):
			return nil, debErrorf(ErrCorruptArchive, "entry %q is an absolute path", name)
		case slices.Contains(strings.Split(name, "/"), ".."):
			return nil, debErrorf(ErrCorruptArchive, "entry %q escapes the archive", name)
		}
		regular := false
		switch h.Typeflag {
		case tar.TypeReg:
			regular = true
		case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeXGlobalHeader:
		default:
			return nil, debErrorf(ErrCorruptArchive, "entry %q has unsupported type %q", name, h.Typeflag)
		}
		if path.Clean(name) != "control" {
			continue
		}
		switch {
		case found:
			return nil, debErrorf(ErrCorruptArchive, "two control files (the second is %q)", name)
		case h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink:
			return nil, debErrorf(ErrCorruptArchive, "control file %q is a link to %q, not a regular file", name, h.Linkname)
		case !regular:
			return nil, debErrorf(ErrCorruptArchive, "control file %q is not a regular file", name)
		case h.Size > MaxControlSize:
			return nil, debErrorf(ErrTooLarge, "control file of %d bytes exceeds %d bytes", h.Size, MaxControlSize)
		}
		control = make([]byte, h.Size)
		if _, err := io.ReadFull(tr, control); err != nil {
			return nil, err
		}
		found = true
	}
	if !found {
		return nil, debErrorf(ErrCorruptArchive, "no control file")
	}
	return control, nil
}
