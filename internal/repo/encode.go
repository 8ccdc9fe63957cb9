package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/format"
)

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

// encode compresses data as one self-contained member/frame/stream; Raw
// returns data itself.
func encode(enc format.Encoding, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch enc {
	case format.Raw:
		return data, nil
	case format.Gzip:
		// A gzip compressor allocates about a megabyte: reuse them.
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(&buf)
		w = zw
	case format.Zstd:
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	case format.Xz:
		w, err = xz.NewWriter(&buf)
	default:
		return nil, fmt.Errorf("unknown encoding %q", enc)
	}
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encName(enc format.Encoding) string {
	if enc == format.Raw {
		return "raw"
	}
	return string(enc)
}

// encodeChunk encodes the fragments of kind of a chunk's entries as one
// self-contained part (an xz block with its index record for xz).
func (a *assembler) encodeChunk(ctx context.Context, kind string, enc format.Encoding, entries []*format.Entry) ([]byte, xzRecord, error) {
	frags, err := a.fragments(ctx, entries)
	if err != nil {
		return nil, xzRecord{}, err
	}
	var raw []byte
	for _, f := range frags {
		raw = append(raw, f[kind]...)
	}
	if enc == format.Xz {
		return xzBlock(raw)
	}
	data, err := encode(enc, raw)
	return data, xzRecord{}, err
}
