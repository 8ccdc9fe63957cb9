package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
)

// Chunking: a stream's entries (in Path order) are cut into chunks at
// entries whose path hash has its low bits zero, and at chunkMax entries.
// Boundaries depend only on the paths, so inserting or removing one
// package changes one chunk, and only that chunk is encoded again.
const (
	chunkMask = 31
	chunkMax  = 128
)

// chunkCache keeps encoded chunks between publishes, keyed by the fragment
// kind, encoding and the IDs of the entries (fragments never change once
// rendered). Entries not used by a publish are dropped after it.
type chunkCache struct {
	m map[string]*cachedChunk
}

type cachedChunk struct {
	data []byte
	used bool
}

func newChunkCache() *chunkCache { return &chunkCache{m: map[string]*cachedChunk{}} }

func (c *chunkCache) sweep() {
	for k, v := range c.m {
		if !v.used {
			delete(c.m, k)
		}
		v.used = false
	}
}

// size returns the bytes held.
func (c *chunkCache) size() int {
	n := 0
	for _, v := range c.m {
		n += len(v.data)
	}
	return n
}

func isBoundary(path string) bool {
	h := fnv.New32a()
	_, _ = io.WriteString(h, path)
	return h.Sum32()&chunkMask == 0
}

// chunkEntries cuts entries into chunks.
func chunkEntries(entries []*format.Entry) [][]*format.Entry {
	var out [][]*format.Entry
	start := 0
	for i, e := range entries {
		if i+1-start >= chunkMax || isBoundary(e.Path) {
			out = append(out, entries[start:i+1])
			start = i + 1
		}
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}

func chunkKey(kind string, enc format.Encoding, chunk []*format.Entry) string {
	b := make([]byte, 0, len(kind)+len(enc)+2+8*len(chunk))
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, enc...)
	b = append(b, 0)
	for _, e := range chunk {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ID))
	}
	return string(b)
}

// encode compresses data as one self-contained member/frame/stream.
func encode(enc format.Encoding, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch enc {
	case format.Gzip:
		w, err = gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
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

// assembler builds the streams of one publish.
type assembler struct {
	blobs blob.Store
	cache *chunkCache
	// encoded counts chunks encoded by this publish (the rest came from
	// the cache); tests and logs use it.
	encoded int
}

// build assembles one stream over its (already filtered, Path-ordered)
// entries, stores every encoding as a blob and returns what it built.
func (a *assembler) build(ctx context.Context, st format.Stream, entries []*format.Entry) (format.Built, error) {
	out := format.Built{Name: st.Name, Encoded: map[format.Encoding]format.Blob{}}
	header := st.Header(len(entries))

	// Raw digest and size: hash the fragments in place.
	h := sha256.New()
	size := int64(0)
	write := func(b []byte) {
		h.Write(b)
		size += int64(len(b))
	}
	write(header)
	for _, e := range entries {
		write(e.Fragments[st.Fragment])
	}
	write(st.Footer)
	out.Raw = format.Blob{SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}

	chunks := chunkEntries(entries)
	for _, enc := range st.Encodings {
		b, err := a.buildEncoding(ctx, st, enc, header, chunks)
		if err != nil {
			return out, fmt.Errorf("assemble %s (%s): %w", st.Name, encName(enc), err)
		}
		out.Encoded[enc] = b
	}
	return out, nil
}

func encName(enc format.Encoding) string {
	if enc == format.Raw {
		return "raw"
	}
	return string(enc)
}

func (a *assembler) buildEncoding(ctx context.Context, st format.Stream, enc format.Encoding, header []byte, chunks [][]*format.Entry) (format.Blob, error) {
	w, err := a.blobs.Create(ctx, 0)
	if err != nil {
		return format.Blob{}, err
	}
	fail := func(err error) (format.Blob, error) {
		_ = w.Cancel(context.WithoutCancel(ctx))
		return format.Blob{}, err
	}
	if enc == format.Raw {
		if _, err := w.Write(header); err != nil {
			return fail(err)
		}
		for _, c := range chunks {
			for _, e := range c {
				if _, err := w.Write(e.Fragments[st.Fragment]); err != nil {
					return fail(err)
				}
			}
		}
		if _, err := w.Write(st.Footer); err != nil {
			return fail(err)
		}
	} else {
		hb, err := encode(enc, header)
		if err != nil {
			return fail(err)
		}
		if _, err := w.Write(hb); err != nil {
			return fail(err)
		}
		var raw []byte
		for _, c := range chunks {
			key := chunkKey(st.Fragment, enc, c)
			cc, ok := a.cache.m[key]
			if !ok {
				raw = raw[:0]
				for _, e := range c {
					raw = append(raw, e.Fragments[st.Fragment]...)
				}
				data, err := encode(enc, raw)
				if err != nil {
					return fail(err)
				}
				cc = &cachedChunk{data: data}
				a.cache.m[key] = cc
				a.encoded++
			}
			cc.used = true
			if _, err := w.Write(cc.data); err != nil {
				return fail(err)
			}
		}
		if len(st.Footer) > 0 {
			fb, err := encode(enc, st.Footer)
			if err != nil {
				return fail(err)
			}
			if _, err := w.Write(fb); err != nil {
				return fail(err)
			}
		}
	}
	info, err := w.Commit(ctx, "")
	if err != nil {
		return format.Blob{}, err
	}
	return format.Blob{SHA256: string(info.Digest), Size: info.Size}, nil
}
