package fsblob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"

	"github.com/packyard/packyard/internal/blob"
)

// writer writes a blob to a temporary file in tmp/. It is not safe for
// concurrent use.
type writer struct {
	s     *Store
	f     *os.File // nil once closed
	name  string   // f's path, removed when the writer ends; "" for an O_TMPFILE
	h     hash.Hash
	n     int64
	limit int64 // 0: none
	// err is the first write error. It sticks, so that a blob missing some
	// bytes can never be committed.
	err   error
	ended bool // Commit or Cancel was called
}

var _ blob.Writer = (*writer)(nil)

// newWriter returns a writer to f, a named temporary file, or an unnamed
// one (O_TMPFILE) when named is false.
func newWriter(s *Store, f *os.File, named bool, limit int64) *writer {
	w := &writer{s: s, f: f, h: sha256.New(), limit: limit}
	if named {
		w.name = f.Name()
	}
	return w
}

// Write appends p to the blob. A write that would pass the limit writes
// nothing and fails with blob.ErrTooLarge.
func (w *writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, fmt.Errorf("fsblob: write blob: %w", blob.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.limit > 0 && int64(len(p)) > w.limit-w.n {
		w.err = fmt.Errorf("fsblob: write blob: %d bytes would pass the limit of %d: %w",
			w.n+int64(len(p)), w.limit, blob.ErrTooLarge)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("fsblob: write blob: %w", err)
		return n, w.err
	}
	return n, nil
}

// Size returns the number of bytes written so far.
func (w *writer) Size() int64 { return w.n }

// Digest returns the digest of the bytes written so far.
func (w *writer) Digest() blob.Digest {
	return blob.Digest(hex.EncodeToString(w.h.Sum(nil)))
}

// Commit links the temporary file under its digest, unless a blob with that
// digest exists, and removes the temporary name. Whatever happens, the
// writer has ended and the temporary file is gone.
func (w *writer) Commit(ctx context.Context, want blob.Digest) (blob.Info, error) {
	return w.commitAs(ctx, want, false)
}

// CommitLazy commits without flushing: the blob is durable once the
// store's Sync returns (blob.LazyCommitter).
func (w *writer) CommitLazy(ctx context.Context, want blob.Digest) (blob.Info, error) {
	return w.commitAs(ctx, want, true)
}

func (w *writer) commitAs(ctx context.Context, want blob.Digest, lazy bool) (blob.Info, error) {
	if w.ended {
		return blob.Info{}, fmt.Errorf("fsblob: commit blob: %w", blob.ErrClosed)
	}
	w.ended = true
	info, err := w.commit(ctx, want, lazy)
	// After a successful commit the blob is durable whatever discard does: a
	// temporary name it could not remove is harmless, and Open removes it.
	if derr := w.discard(); err != nil {
		return blob.Info{}, errors.Join(err, derr)
	}
	return info, nil
}

func (w *writer) commit(ctx context.Context, want blob.Digest, lazy bool) (blob.Info, error) {
	if w.err != nil {
		return blob.Info{}, w.err
	}
	d := w.Digest()
	if want != "" && want != d {
		return blob.Info{}, fmt.Errorf("fsblob: commit blob %s: bytes written hash to %s: %w",
			want, d, blob.ErrDigestMismatch)
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("fsblob: commit blob %s: %w", d, err) }

	final := w.s.path(d)
	if fi, err := os.Stat(final); err == nil {
		// Already stored: never touch it. Its directory entry may not be
		// durable yet (a concurrent commit between link and sync, or a
		// crashed process), and the caller is about to rely on it; its
		// bytes neither, if it was committed lazily.
		if lazy {
			return w.s.touch(d, fi), nil
		}
		if w.s.isLazy(d) {
			if err := syncFile(final); err != nil {
				return blob.Info{}, wrap(err)
			}
		}
		// Its shard directory may have been made by a lazy commit too.
		if err := w.s.mkdirShard(d, false); err != nil {
			return blob.Info{}, wrap(err)
		}
		if !w.s.isSynced(d) {
			if err := syncDir(w.s.shardDir(d)); err != nil {
				return blob.Info{}, wrap(err)
			}
			w.s.markSynced(d)
		}
		return w.s.touch(d, fi), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return blob.Info{}, wrap(err)
	}

	if err := w.f.Chmod(blobMode); err != nil {
		return blob.Info{}, wrap(err)
	}
	if !lazy {
		if err := w.f.Sync(); err != nil {
			return blob.Info{}, wrap(err)
		}
	}
	if err := w.s.mkdirShard(d, lazy); err != nil {
		return blob.Info{}, wrap(err)
	}
	// Link, unlike rename, fails if the name exists, so a concurrent commit
	// of the same bytes cannot replace a blob that a reader may have open.
	var err error
	if w.name == "" {
		err = linkTmpfile(w.f, final)
	} else {
		err = os.Link(w.name, final)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return blob.Info{}, wrap(err)
	}
	// The file linked is the blob (an fstat, not a path lookup); after a
	// lost race the blob is the winner's file.
	var fi fs.FileInfo
	if err == nil {
		fi, err = w.f.Stat()
	} else {
		fi, err = os.Stat(final)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return blob.Info{}, wrap(err)
	}
	if lazy {
		w.s.markLazy(d)
		return info(d, fi), nil
	}
	// Synced after a lost race too: the winner may not have synced yet.
	if err := syncDir(w.s.shardDir(d)); err != nil {
		return blob.Info{}, wrap(err)
	}
	w.s.markSynced(d)
	return info(d, fi), nil
}

// Cancel removes the temporary file.
func (w *writer) Cancel(ctx context.Context) error {
	if w.ended {
		return fmt.Errorf("fsblob: cancel blob: %w", blob.ErrClosed)
	}
	w.ended = true
	return w.discard()
}

// discard closes and removes the temporary file.
func (w *writer) discard() error {
	var cerr error
	if w.f != nil {
		cerr = w.f.Close()
		w.f = nil
	}
	var rerr error
	if w.name != "" {
		rerr = os.Remove(w.name)
		if errors.Is(rerr, fs.ErrNotExist) {
			rerr = nil
		}
	}
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("fsblob: discard temporary file: %w", err)
	}
	return nil
}
