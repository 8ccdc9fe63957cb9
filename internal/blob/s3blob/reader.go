package s3blob

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/minio/minio-go/v7"

	"github.com/packyard/packyard/internal/blob"
)

// reader reads a blob with one GET per run of consecutive reads: the GET
// that Open sends serves reads from the start, and the first read after a
// seek elsewhere drops the response in progress and sends a GET with a Range
// from the new position. Seeking alone sends nothing, so the Seek(0,
// io.SeekEnd) with which http.ServeContent learns the size costs no request.
// A reader is not safe for concurrent use.
type reader struct {
	s      *Store
	ctx    context.Context
	d      blob.Digest
	key    string
	size   int64
	pos    int64         // position of the next Read
	body   io.ReadCloser // response in progress; nil: none
	at     int64         // position of body
	closed bool
}

var _ blob.Reader = (*reader)(nil)

// newReader sends the GET of the whole blob, which tells whether it exists
// and its size.
func (s *Store) newReader(ctx context.Context, d blob.Digest) (*reader, error) {
	key := s.key(d)
	body, oi, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(ctx, "open blob "+string(d), err)
	}
	s.markUp()
	return &reader{s: s, ctx: ctx, d: d, key: key, size: oi.Size, body: body}, nil
}

// Read reads from the current position, sending a new GET if the position
// is not where the response in progress is.
func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("s3blob: read blob %s: %w", r.d, os.ErrClosed)
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body != nil && r.at != r.pos {
		r.drop()
	}
	if r.body == nil {
		if err := r.get(); err != nil {
			return 0, err
		}
	}
	// The store must not send more than the size it announced.
	p = p[:min(int64(len(p)), r.size-r.pos)]
	n, err := r.body.Read(p)
	r.pos += int64(n)
	r.at += int64(n)
	switch {
	case err == io.EOF && r.pos < r.size:
		err = io.ErrUnexpectedEOF
	case err == io.EOF:
		r.drop()
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil // the next Read returns io.EOF
	case err == nil:
		return n, nil
	}
	r.drop()
	return n, r.s.wrap(r.ctx, fmt.Sprintf("read blob %s at offset %d", r.d, r.pos), err)
}

// get sends a GET of the bytes from the current position to the end.
func (r *reader) get() error {
	var opts minio.GetObjectOptions
	if r.pos > 0 { // SetRange(0, 0) would ask for the first byte only
		if err := opts.SetRange(r.pos, 0); err != nil {
			return fmt.Errorf("s3blob: read blob %s: %w", r.d, err)
		}
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.s.cfg.Bucket, r.key, opts)
	if err != nil {
		return r.s.wrap(r.ctx, fmt.Sprintf("read blob %s at offset %d", r.d, r.pos), err)
	}
	r.body, r.at = body, r.pos
	return nil
}

// drop closes the response in progress.
func (r *reader) drop() {
	if r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
}

// Seek sets the position of the next Read; it sends no request. A position
// past the end is allowed, and reads there return io.EOF.
func (r *reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fmt.Errorf("s3blob: seek blob %s: %w", r.d, os.ErrClosed)
	}
	pos := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		pos += r.pos
	case io.SeekEnd:
		pos += r.size
	default:
		return 0, fmt.Errorf("s3blob: seek blob %s: invalid whence %d", r.d, whence)
	}
	if pos < 0 {
		return 0, fmt.Errorf("s3blob: seek blob %s: negative position %d", r.d, pos)
	}
	r.pos = pos
	return pos, nil
}

// Close ends the response in progress, if any.
func (r *reader) Close() error {
	r.drop()
	r.closed = true
	return nil
}
