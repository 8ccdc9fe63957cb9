package s3blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/packyard/packyard/internal/blob"
)

const (
	// uploadWorkers is the number of parts of one blob uploaded at once.
	uploadWorkers = 4
	// abortTimeout bounds the abort of a failed multipart upload, which
	// runs even if the caller's context is done.
	abortTimeout = 30 * time.Second
	contentType  = "application/octet-stream"
)

// writer holds a blob's bytes until Commit: in memory up to
// Config.MemoryBuffer, then in a temporary file. It hashes the whole blob,
// and each part of Config.PartSize bytes, as the bytes arrive. It is not
// safe for concurrent use.
type writer struct {
	s        *Store
	partSize int64
	limit    int64 // 0: none

	h    hash.Hash // the whole blob
	part hash.Hash // the current part, from the second part on
	sums []string  // hex SHA-256 of each completed part
	n    int64

	buf  []byte   // the bytes while f is nil
	f    *os.File // the bytes once they passed Config.MemoryBuffer
	name string   // f's name, if it could not be unlinked at once

	// err is the first write error. It sticks, so that a blob missing some
	// bytes can never be committed.
	err   error
	ended bool // Commit or Cancel was called
}

var _ blob.Writer = (*writer)(nil)

func newWriter(s *Store, limit int64) *writer {
	return &writer{s: s, partSize: s.cfg.PartSize, limit: limit, h: sha256.New()}
}

// Write appends p to the blob. A write that would pass the limit, or the
// largest blob that fits in the store's 10,000 parts, writes nothing and
// fails with blob.ErrTooLarge.
func (w *writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, fmt.Errorf("s3blob: write blob: %w", blob.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	size := int64(len(p))
	if w.limit > 0 && size > w.limit-w.n {
		w.err = fmt.Errorf("s3blob: write blob: %d bytes would pass the limit of %d: %w",
			w.n+size, w.limit, blob.ErrTooLarge)
		return 0, w.err
	}
	if most := w.partSize * maxParts; size > most-w.n {
		w.err = fmt.Errorf("s3blob: write blob: %d bytes would need more than %d parts of %d bytes (raise the part size): %w",
			w.n+size, maxParts, w.partSize, blob.ErrTooLarge)
		return 0, w.err
	}
	n, err := w.store(p)
	w.hash(p[:n])
	if err != nil {
		w.err = fmt.Errorf("s3blob: write blob: %w", err)
		return n, w.err
	}
	return n, nil
}

// store keeps p in memory, or in the temporary file once there is too much
// for memory.
func (w *writer) store(p []byte) (int, error) {
	if w.f == nil {
		if int64(len(w.buf)+len(p)) <= w.s.cfg.MemoryBuffer {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	return w.f.Write(p)
}

// spill moves the bytes held in memory to a new temporary file. The file is
// unlinked at once, so that it disappears with the process whatever happens;
// where that fails, discard removes it by name.
func (w *writer) spill() error {
	f, err := os.CreateTemp(w.s.cfg.TempDir, "packyard-s3blob-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	w.f = f
	if os.Remove(f.Name()) != nil {
		w.name = f.Name()
	}
	if _, err := f.Write(w.buf); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	w.buf = nil
	return nil
}

// hash adds p to the digest of the blob and to those of its parts. The first
// part needs no hash of its own: it is the blob's digest at the end of the
// part, so a blob sent in one PUT is hashed once.
func (w *writer) hash(p []byte) {
	for len(p) > 0 {
		end := (w.n/w.partSize + 1) * w.partSize
		k := min(int64(len(p)), end-w.n)
		w.h.Write(p[:k])
		if w.n >= w.partSize {
			if w.part == nil {
				w.part = sha256.New()
			}
			w.part.Write(p[:k])
		}
		w.n += k
		if w.n == end {
			w.endPart()
		}
		p = p[k:]
	}
}

// endPart records the digest of the part that ends at w.n.
func (w *writer) endPart() {
	if len(w.sums) == 0 {
		w.sums = append(w.sums, hex.EncodeToString(w.h.Sum(nil)))
		return
	}
	w.sums = append(w.sums, hex.EncodeToString(w.part.Sum(nil)))
	w.part.Reset()
}

// endLastPart records the digest of the last part, if it is shorter than
// the others.
func (w *writer) endLastPart() {
	if w.n > int64(len(w.sums))*w.partSize {
		w.endPart()
	}
}

// Size returns the number of bytes written so far.
func (w *writer) Size() int64 { return w.n }

// Digest returns the digest of the bytes written so far.
func (w *writer) Digest() blob.Digest {
	return blob.Digest(hex.EncodeToString(w.h.Sum(nil)))
}

// Commit uploads the blob under its digest, unless an object is there
// already. Whatever happens, the writer has ended and its bytes are
// released.
func (w *writer) Commit(ctx context.Context, want blob.Digest) (blob.Info, error) {
	if w.ended {
		return blob.Info{}, fmt.Errorf("s3blob: commit blob: %w", blob.ErrClosed)
	}
	w.ended = true
	info, err := w.commit(ctx, want)
	// Once the blob is stored, a temporary file that could not be removed
	// does not make the commit fail.
	if derr := w.discard(); err != nil {
		return blob.Info{}, errors.Join(err, derr)
	}
	return info, nil
}

func (w *writer) commit(ctx context.Context, want blob.Digest) (blob.Info, error) {
	if w.err != nil {
		return blob.Info{}, w.err
	}
	d := w.Digest()
	if want != "" && want != d {
		return blob.Info{}, fmt.Errorf("s3blob: commit blob %s: bytes written hash to %s: %w",
			want, d, blob.ErrDigestMismatch)
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	w.endLastPart()
	// Looked up first: a blob is never rewritten. A second upload is for a
	// conditional write that lost to an upload of the same bytes that had
	// not finished (409 on AWS).
	for attempt := 1; ; attempt++ {
		info, err := w.s.stat(ctx, d)
		if err == nil {
			if attempt == 1 {
				return w.s.touch(ctx, d, info)
			}
			return info, nil
		}
		if !errors.Is(err, blob.ErrNotFound) {
			return blob.Info{}, err
		}
		if attempt > 2 {
			return blob.Info{}, fmt.Errorf("s3blob: commit blob %s: %w (%s): object missing after its upload",
				d, blob.ErrUnavailable, w.s.where)
		}
		if err := w.put(ctx, d); err != nil && !isExists(err) {
			return blob.Info{}, w.s.wrap(ctx, "commit blob "+string(d), err)
		}
	}
}

// put uploads the blob under the key of d, if no object is there.
func (w *writer) put(ctx context.Context, d blob.Digest) error {
	if len(w.sums) > 1 {
		return w.putMultipart(ctx, d)
	}
	// The server checks the body against x-amz-content-sha256, which
	// minio-go sends signed with the request when streaming signatures are
	// off.
	opts := minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true}
	opts.SetMatchETagExcept("*")
	body := io.NewSectionReader(w.source(), 0, w.n)
	_, err := w.s.core.PutObject(ctx, w.s.cfg.Bucket, w.s.key(d), body, w.n, "", string(d), opts)
	return err
}

// putMultipart uploads the blob in parts, and aborts the upload if it
// cannot complete it.
func (w *writer) putMultipart(ctx context.Context, d blob.Digest) error {
	bucket, key := w.s.cfg.Bucket, w.s.key(d)
	// Created detached from ctx: a request cancelled after the server
	// created the upload but before its ID arrived would leave an upload
	// nobody can abort. ctx is looked at once the ID is known.
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	id, err := w.s.core.NewMultipartUpload(nctx, bucket, key, minio.PutObjectOptions{ContentType: contentType})
	ncancel()
	if err != nil {
		return err
	}
	parts, err := w.putParts(ctx, key, id)
	if err == nil {
		opts := minio.PutObjectOptions{ContentType: contentType}
		opts.SetMatchETagExcept("*")
		if _, err = w.s.core.CompleteMultipartUpload(ctx, bucket, key, id, parts, opts); err == nil {
			return nil
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if aerr := w.s.core.AbortMultipartUpload(actx, bucket, key, id); aerr != nil {
		err = errors.Join(err, fmt.Errorf("abort multipart upload %s of %s (a lifecycle rule "+
			"that aborts incomplete multipart uploads removes it): %w", id, key, aerr))
	}
	return err
}

// putParts uploads the parts of the blob, uploadWorkers at a time, and
// returns the list that completes the upload. It stops at the first error.
func (w *writer) putParts(ctx context.Context, key, id string) ([]minio.CompletePart, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := w.source()
	parts := make([]minio.CompletePart, len(w.sums))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range min(uploadWorkers, len(w.sums)) {
		wg.Go(func() {
			for i := range next {
				off := int64(i) * w.partSize
				size := min(w.partSize, w.n-off)
				p, err := w.s.core.PutObjectPart(pctx, w.s.cfg.Bucket, key, id, i+1,
					io.NewSectionReader(src, off, size), size,
					minio.PutObjectPartOptions{Sha256Hex: w.sums[i], DisableContentSha256: true})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("part %d: %w", i+1, err)
						cancel()
					}
					mu.Unlock()
					continue
				}
				parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag}
			}
		})
	}
feed:
	for i := range w.sums {
		select {
		case next <- i:
		case <-pctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if first != nil {
		return nil, first
	}
	return parts, nil
}

// source returns the bytes written.
func (w *writer) source() io.ReaderAt {
	if w.f != nil {
		return w.f
	}
	return bytes.NewReader(w.buf)
}

// Cancel releases the bytes written; nothing was sent to the store.
func (w *writer) Cancel(ctx context.Context) error {
	if w.ended {
		return fmt.Errorf("s3blob: cancel blob: %w", blob.ErrClosed)
	}
	w.ended = true
	return w.discard()
}

// discard releases the memory buffer and closes the temporary file, which
// removes it.
func (w *writer) discard() error {
	w.buf = nil
	var cerr, rerr error
	if w.f != nil {
		cerr = w.f.Close()
		w.f = nil
	}
	if w.name != "" {
		rerr = os.Remove(w.name)
		w.name = ""
	}
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("s3blob: discard temporary file: %w", err)
	}
	return nil
}
