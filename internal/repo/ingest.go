package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Upload is one package upload.
type Upload struct {
	Repo     string
	Filename string
	Body     io.Reader
	Params   format.UploadParams
	// Uploader names who uploaded (the token's name).
	Uploader string
	// Wait makes Ingest return only once the package is in the current
	// generation.
	Wait bool

	// noLookup skips looking for a live package with the identity before
	// recording (Stored.NoLookup).
	noLookup bool
}

// Result says what an upload did.
type Result struct {
	// Created is false when identical bytes were already there.
	Created bool
	Package *meta.Package
	// Generation is the generation that made the package visible (0 when
	// the caller did not wait).
	Generation int64
}

// ConflictError is returned (wrapping ErrConflict) when a different file
// with the same identity or path is already in the repository.
type ConflictError struct {
	Existing *meta.Package
}

func (e *ConflictError) Error() string {
	p := e.Existing
	return fmt.Sprintf("package conflict: %s (id %d, sha256 %s, uploaded %s) is already in the repository with different content; remove it first or upload it under a new version",
		p.Path, p.ID, p.Digest, p.UploadedAt.UTC().Format("2006-01-02T15:04:05Z"))
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Ingest stores and records one uploaded package. The upload streams to a
// blob writer while the format parses its header; nothing stays behind if
// anything fails.
func (s *Service) Ingest(ctx context.Context, u Upload) (*Result, error) {
	start := s.opts.Now()
	res, err := s.ingest(ctx, u)
	s.opts.Metrics.UploadDone(uploadResult(res, err))
	if err != nil {
		return nil, err
	}
	if u.Wait {
		r, err := s.GetRepo(ctx, u.Repo)
		if err != nil {
			return nil, err
		}
		gen, err := s.publisher(r).waitVisible(ctx, res.Package.AddedSeq)
		if err != nil {
			return nil, fmt.Errorf("package %s is stored but publishing failed: %w", res.Package.Path, err)
		}
		res.Generation = gen
		if res.Created {
			s.opts.Metrics.Visible(u.Repo, s.opts.Now().Sub(start))
		}
	} else if res.Created {
		r, err := s.GetRepo(ctx, u.Repo)
		if err == nil {
			s.publisher(r).watch(res.Package.AddedSeq, func() {
				s.opts.Metrics.Visible(u.Repo, s.opts.Now().Sub(start))
			})
		}
	}
	return res, nil
}

func uploadResult(res *Result, err error) string {
	switch {
	case err == nil && res.Created:
		return "created"
	case err == nil:
		return "exists"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, format.ErrPackageTooLarge), errors.Is(err, blob.ErrTooLarge):
		return "too_large"
	case errors.Is(err, format.ErrInvalidPackage):
		return "invalid"
	default:
		return "error"
	}
}

func (s *Service) ingest(ctx context.Context, u Upload) (*Result, error) {
	r, err := s.GetRepo(ctx, u.Repo)
	if err != nil {
		return nil, err
	}
	if r.Kind != meta.KindHosted {
		return nil, fmt.Errorf("%w: %q is a %s repository", ErrNotHosted, r.Name, r.Kind)
	}
	f, ok := s.formats[r.Format]
	if !ok {
		return nil, fmt.Errorf("%w: format %q of %q is not available", ErrInvalidRepo, r.Format, r.Name)
	}
	if strings.ContainsAny(u.Filename, "/\\\x00") || u.Filename == "" {
		return nil, fmt.Errorf("%w: file name %q must be a plain file name", format.ErrInvalidPackage, u.Filename)
	}

	w, err := s.blobs.Create(ctx, s.opts.MaxUploadSize)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Cancel(context.WithoutCancel(ctx))
		}
	}()

	// The parser reads the package's header through the tee; the rest of
	// the stream is then copied straight into the blob.
	tee := io.TeeReader(u.Body, w)
	pkg, perr := f.Parse(tee, u.Filename, u.Params)
	if perr != nil {
		if errors.Is(perr, blob.ErrTooLarge) {
			return nil, s.tooLarge()
		}
		return nil, fmt.Errorf("%s: %w", u.Filename, perr)
	}
	if _, err := io.Copy(w, u.Body); err != nil {
		if errors.Is(err, blob.ErrTooLarge) {
			return nil, s.tooLarge()
		}
		return nil, fmt.Errorf("read upload %s: %w", u.Filename, err)
	}
	digest, size := string(w.Digest()), w.Size()
	return s.record(ctx, r, f, pkg, digest, size, u, func() error {
		if _, err := w.Commit(ctx, ""); err != nil {
			return fmt.Errorf("store %s: %w", u.Filename, err)
		}
		committed = true
		return nil
	})
}

// record renders a parsed package's fragments and records it, unless a
// package with its identity is there already; commit makes its blob
// durable just before the row is added (nil when the blob is stored).
func (s *Service) record(ctx context.Context, r *meta.Repo, f format.Format, pkg *format.Package, digest string, size int64, u Upload, commit func() error) (*Result, error) {
	p, res, err := s.prepare(ctx, r, f, pkg, digest, size, u)
	if p == nil {
		return res, err
	}
	return s.add(ctx, p, commit)
}

// Prepared is a parsed package with its rendered fragments, ready for its
// row (Service.RecordPrepared).
type Prepared struct {
	rec                *meta.Package
	filename, repoName string
}

// prepare renders a parsed package's fragments. When a package with its
// identity is there already it returns that package's Result (or a
// ConflictError) and no Prepared.
func (s *Service) prepare(ctx context.Context, r *meta.Repo, f format.Format, pkg *format.Package, digest string, size int64, u Upload) (*Prepared, *Result, error) {
	scope, err := f.Scope(pkg, u.Params)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u.Filename, err)
	}
	id := meta.Identity{Scope: scope, Name: pkg.Name, Epoch: pkg.Epoch, Version: pkg.Version, Release: pkg.Release, Arch: pkg.Arch}

	var existing *meta.Package
	err = meta.ErrNotFound
	if !u.noLookup {
		existing, err = s.meta.FindPackage(ctx, r.ID, id)
	}
	switch {
	case err == nil:
		if existing.Digest == digest {
			return nil, &Result{Package: existing}, nil
		}
		return nil, nil, &ConflictError{Existing: existing}
	case !errors.Is(err, meta.ErrNotFound):
		return nil, nil, fmt.Errorf("look up %s in %q: %w", pkg.Path, r.Name, err)
	}

	now := s.opts.Now().UTC()
	fi := format.FileInfo{SHA256: digest, Size: size, Time: now}
	if fc, ok := f.(format.FileChecker); ok {
		if err := fc.CheckFile(pkg, fi); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", u.Filename, err)
		}
	}
	frags, err := f.Render(pkg, fi)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u.Filename, err)
	}
	return &Prepared{filename: u.Filename, repoName: r.Name, rec: &meta.Package{
		RepoID: r.ID, Identity: id, Path: pkg.Path, Digest: digest, Size: size,
		Summary: pkg.Summary, UploadedBy: u.Uploader, UploadedAt: now, Fragments: frags,
	}}, nil, nil
}

// add adds a prepared package's row; commit (when not nil) makes its
// blob durable first.
func (s *Service) add(ctx context.Context, p *Prepared, commit func() error) (*Result, error) {
	rec, digest := p.rec, p.rec.Digest
	// From the blob's commit until its row is in (or the blob is deleted
	// again after a failed insert), no other upload of the same bytes may
	// run the same steps: a failed upload would delete the blob that a
	// concurrent, acknowledged one of the same bytes relies on.
	lock := s.digestLock(digest)
	lock.Lock()
	defer lock.Unlock()
	if commit != nil {
		if err := commit(); err != nil {
			return nil, err
		}
	}
	existing, err := s.meta.AddPackage(ctx, rec)
	if err != nil {
		if commit != nil {
			s.dropUnreferenced(ctx, digest)
		}
		if errors.Is(err, meta.ErrExists) && existing != nil {
			if existing.Digest == digest && existing.Identity == rec.Identity {
				return &Result{Package: existing}, nil
			}
			return nil, &ConflictError{Existing: existing}
		}
		return nil, fmt.Errorf("record %s in %q: %w", rec.Path, p.repoName, err)
	}
	s.feed.bump()
	return &Result{Created: true, Package: rec}, nil
}

// digestLock returns the lock that serialises commits and deletions of
// blobs with this digest (striped: unrelated digests rarely share one).
func (s *Service) digestLock(digest string) *sync.Mutex {
	var i int
	if len(digest) >= 2 {
		i = int(fromHex(digest[0])<<4|fromHex(digest[1])) % len(s.digestLocks)
	}
	return &s.digestLocks[i]
}

func fromHex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}

// dropUnreferenced deletes a blob this upload committed but could not
// record, unless something else names it.
func (s *Service) dropUnreferenced(ctx context.Context, digest string) {
	ctx = context.WithoutCancel(ctx)
	ref, err := s.meta.DigestReferenced(ctx, digest)
	if err != nil || ref {
		return
	}
	if err := s.blobs.Delete(ctx, blob.Digest(digest)); err != nil && !errors.Is(err, blob.ErrNotFound) {
		s.log.Warn("could not delete unrecorded blob; gc will", "digest", digest, "err", err)
	}
}

func (s *Service) tooLarge() error {
	return fmt.Errorf("%w: the upload exceeds the limit of %d bytes (server setting max_upload_size)", blob.ErrTooLarge, s.opts.MaxUploadSize)
}
