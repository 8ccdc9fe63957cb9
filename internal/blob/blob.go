// Package blob defines the content-addressed blob store that holds every
// package file and every generated index file.
//
// A blob is an immutable sequence of bytes named by its SHA-256 digest. A
// store never overwrites or renames a committed blob: committing bytes that
// are already present is a no-op. Writes go through a Writer that hashes and
// counts while it writes and becomes visible only on Commit, so a reader
// never sees a partial blob.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors returned by every Store implementation.
var (
	// ErrNotFound means no blob with that digest is stored.
	ErrNotFound = errors.New("blob not found")
	// ErrDigestMismatch means the bytes written do not hash to the digest
	// the caller expected.
	ErrDigestMismatch = errors.New("blob digest mismatch")
	// ErrTooLarge means a Writer received more bytes than its limit.
	ErrTooLarge = errors.New("blob too large")
	// ErrInvalidDigest means a string is not a lowercase hex SHA-256 digest.
	ErrInvalidDigest = errors.New("invalid blob digest")
	// ErrClosed means the Writer was already committed or cancelled.
	ErrClosed = errors.New("blob writer closed")
	// ErrUnavailable means the store could not be reached, timed out, or
	// answered with a server error: nothing is known about the blob, and the
	// same call may succeed later. The HTTP layer answers 503.
	ErrUnavailable = errors.New("blob store unavailable")
)

// Digest is the lowercase hex SHA-256 of a blob's bytes.
type Digest string

// DigestOf returns the digest of b.
func DigestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(hex.EncodeToString(sum[:]))
}

// ParseDigest validates s as a digest.
func ParseDigest(s string) (Digest, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("%w: %q is not 64 hex characters", ErrInvalidDigest, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: %q is not lowercase hex", ErrInvalidDigest, s)
		}
	}
	return Digest(s), nil
}

// Info describes a committed blob.
type Info struct {
	Digest  Digest
	Size    int64
	ModTime time.Time
}

// Reader reads one blob; it seeks so that HTTP range requests can be served.
type Reader interface {
	io.ReadSeekCloser
}

// Writer receives the bytes of a new blob. It hashes and counts them while
// they are written. Exactly one of Commit or Cancel must be called.
type Writer interface {
	io.Writer
	// Size returns the number of bytes written so far.
	Size() int64
	// Digest returns the digest of the bytes written so far.
	Digest() Digest
	// Commit makes the blob durable and visible under its digest. If want is
	// not empty and differs from the digest of the written bytes, Commit
	// discards the bytes and returns ErrDigestMismatch. Committing a blob that
	// already exists succeeds and leaves the existing blob untouched.
	Commit(ctx context.Context, want Digest) (Info, error)
	// Cancel discards the written bytes; it leaves nothing behind.
	Cancel(ctx context.Context) error
}

// Store is a content-addressed blob store.
type Store interface {
	// Create starts a new blob. limit bounds its size (0: no limit); a
	// write past the limit fails with ErrTooLarge.
	Create(ctx context.Context, limit int64) (Writer, error)
	// Open returns a reader for the blob, or ErrNotFound.
	Open(ctx context.Context, d Digest) (Reader, error)
	// Stat returns the blob's Info, or ErrNotFound.
	Stat(ctx context.Context, d Digest) (Info, error)
	// Delete removes the blob. Deleting a missing blob returns ErrNotFound.
	Delete(ctx context.Context, d Digest) error
	// Walk calls fn for every committed blob, in no particular order, and
	// stops at the first error fn returns.
	Walk(ctx context.Context, fn func(Info) error) error
	// Close releases the store's resources.
	Close() error
}

// LazyCommitter is implemented by Writers that can commit a blob before it
// is durable: the blob is visible under its digest at once, and the
// store's Sync (Syncer) makes it durable. Whoever records the blob where a
// crash must find it (a database row) calls Sync first. Many blobs then
// share one flush instead of paying one each.
type LazyCommitter interface {
	CommitLazy(ctx context.Context, want Digest) (Info, error)
}

// Syncer is implemented by stores with lazy commits.
type Syncer interface {
	// Sync makes every blob committed lazily before the call durable.
	// Concurrent calls share flushes.
	Sync(ctx context.Context) error
}

// Putter is implemented by stores that store a whole byte slice faster than
// through a Writer, typically by noticing that the blob is already stored.
type Putter interface {
	// Put stores b, as Create, Write and Commit would, and returns its Info.
	Put(ctx context.Context, b []byte) (Info, error)
}

// Put stores b and returns its Info, through s's Put if it is a Putter.
func Put(ctx context.Context, s Store, b []byte) (Info, error) {
	if p, ok := s.(Putter); ok {
		return p.Put(ctx, b)
	}
	return WritePut(ctx, s, b)
}

// WritePut stores b through a Writer: Put for stores that are no Putter,
// and the slow path of those that are.
func WritePut(ctx context.Context, s Store, b []byte) (Info, error) {
	w, err := s.Create(ctx, 0)
	if err != nil {
		return Info{}, err
	}
	if _, err := w.Write(b); err != nil {
		_ = w.Cancel(ctx)
		return Info{}, err
	}
	return w.Commit(ctx, "")
}

// ReadAll returns the whole content of a blob.
func ReadAll(ctx context.Context, s Store, d Digest) ([]byte, error) {
	r, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
