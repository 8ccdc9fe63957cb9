package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/packyard/packyard/internal/blob"
)

// Open returns a reader of an object's content: its blob, or the
// concatenation of its parts.
func (s *Service) Open(ctx context.Context, obj *Object) (blob.Reader, error) {
	if obj.Data != nil {
		return nopCloser{bytes.NewReader(obj.Data)}, nil
	}
	if len(obj.Parts) == 0 {
		return s.blobs.Open(ctx, blob.Digest(obj.Digest))
	}
	return OpenParts(ctx, s.blobs, obj.Parts)
}

// OpenParts returns a reader of the concatenation of blobs. It stats every
// part up front (so a missing part fails before a byte is served) and opens
// each part only when a read reaches it.
func OpenParts(ctx context.Context, store blob.Store, parts []string) (blob.Reader, error) {
	r := &partsReader{ctx: ctx, store: store, parts: parts, starts: make([]int64, len(parts)+1), cur: -1}
	for i, p := range parts {
		info, err := store.Stat(ctx, blob.Digest(p))
		if err != nil {
			return nil, fmt.Errorf("part %d (%s): %w", i, p, err)
		}
		r.starts[i+1] = r.starts[i] + info.Size
	}
	return r, nil
}

// partsReader reads and seeks over a sequence of blobs as one.
type partsReader struct {
	ctx    context.Context
	store  blob.Store
	parts  []string
	starts []int64 // starts[i]: offset of part i; starts[len]: total size
	off    int64
	cur    int // index of the open part, -1 if none
	rd     blob.Reader
}

func (r *partsReader) size() int64 { return r.starts[len(r.parts)] }

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.off >= r.size() {
			return 0, io.EOF
		}
		i := r.partAt(r.off)
		if i != r.cur {
			if r.rd != nil {
				r.rd.Close()
				r.rd = nil
			}
			rd, err := r.store.Open(r.ctx, blob.Digest(r.parts[i]))
			if err != nil {
				return 0, err
			}
			r.rd, r.cur = rd, i
		}
		if _, err := r.rd.Seek(r.off-r.starts[i], io.SeekStart); err != nil {
			return 0, err
		}
		n, err := r.rd.Read(p)
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if err == io.EOF && r.off < r.starts[i+1] {
			return 0, fmt.Errorf("part %s is shorter than when it was stored", r.parts[i])
		}
	}
}

// partAt returns the index of the part holding offset off (< size).
func (r *partsReader) partAt(off int64) int {
	lo, hi := 0, len(r.parts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if r.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func (r *partsReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size() + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = abs
	return abs, nil
}

func (r *partsReader) Close() error {
	if r.rd != nil {
		err := r.rd.Close()
		r.rd = nil
		return err
	}
	return nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
