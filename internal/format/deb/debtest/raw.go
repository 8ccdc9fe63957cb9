package debtest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Member is one member of an ar archive.
type Member struct {
	Name string
	Data []byte
}

// Archive returns an ar archive of members as dpkg-deb writes it: the
// "!<arch>\n" magic, then for each member a 60-byte header (name padded
// with spaces to 16 bytes, date, owner 0, group 0, mode 100644, size), the
// data, and a "\n" after data of odd size. Members are dated
// 2024-01-02 03:04:05 UTC.
func Archive(members ...Member) []byte {
	return archive(defaultTime, members)
}

func archive(date time.Time, members []Member) []byte {
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		writeMemberHeader(&b, m.Name, date.Unix(), int64(len(m.Data)))
		b.Write(m.Data)
		if len(m.Data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func writeMemberHeader(b *bytes.Buffer, name string, date, size int64) {
	fmt.Fprintf(b, "%-16s%-12d0     0     100644  %-10d`\n", name, date, size)
}

// defaultTime is the modification time of everything Build writes when a
// Spec has none.
var defaultTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tarEntry is one entry of a tar archive.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// tarArchive returns a GNU tar archive of entries, owned by root, as
// dpkg-deb writes them.
func tarArchive(entries []tarEntry, mtime time.Time) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatGNU
		h.Uname, h.Gname = "root", "root"
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("debtest: tar header %q: %v", h.Name, err))
		}
		if _, err := tw.Write(e.body); err != nil {
			panic(fmt.Sprintf("debtest: tar entry %q: %v", h.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// regular returns a regular file entry.
func regular(name string, mode int64, body []byte) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body: body}
}

// directory returns a directory entry.
func directory(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

// extension returns the member name suffix of a compression.
func extension(compression string) (string, error) {
	switch compression {
	case "gz", "xz", "zst":
		return "." + compression, nil
	case "none":
		return "", nil
	}
	return "", fmt.Errorf("debtest: unknown compression %q (gz, xz, zst or none)", compression)
}

// compress compresses b as dpkg-deb would with the given compression
// (gz, xz, zst or none), deterministically.
func compress(compression string, b []byte) ([]byte, error) {
	var out bytes.Buffer
	var w io.WriteCloser
	var err error
	switch compression {
	case "none":
		return b, nil
	case "gz":
		w, err = gzip.NewWriterLevel(&out, gzip.BestCompression)
	case "xz":
		w, err = xz.NewWriter(&out)
	case "zst":
		// One frame with its content size, as dpkg-deb writes a small
		// member.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(b, nil), nil
	default:
		_, err = extension(compression)
	}
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// mustCompress is compress for the compressions known to work.
func mustCompress(compression string, b []byte) []byte {
	out, err := compress(compression, b)
	if err != nil {
		panic(err)
	}
	return out
}
