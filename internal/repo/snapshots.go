package repo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

// ErrSnapshotNotFound means a repository has no snapshot of that name.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// ErrSnapshotExists means the name is taken.
var ErrSnapshotExists = errors.New("snapshot exists")

var snapshotRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// CreateSnapshot freezes a repository's current generation under name;
// it is served read-only at /REPO/@NAME/ until deleted.
func (s *Service) CreateSnapshot(ctx context.Context, repoName, name string) (*meta.Snapshot, error) {
	if !snapshotRE.MatchString(name) {
		return nil, fmt.Errorf("%w: snapshot name %q must be 1-64 letters, digits, '.', '_', '+', '-'", ErrInvalidRepo, name)
	}
	r, err := s.GetRepo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	if r.Kind == meta.KindProxy {
		return nil, fmt.Errorf("%w: %q is a proxy: a cache has no generations to freeze", ErrInvalidRepo, repoName)
	}
	if r.CurrentGeneration == 0 {
		return nil, fmt.Errorf("%w: %q has published nothing yet", ErrInvalidRepo, repoName)
	}
	sn := &meta.Snapshot{RepoID: r.ID, Name: name, Generation: r.CurrentGeneration}
	if err := s.meta.CreateSnapshot(ctx, sn); err != nil {
		if errors.Is(err, meta.ErrExists) {
			return nil, fmt.Errorf("%w: %q has a snapshot %q", ErrSnapshotExists, repoName, name)
		}
		return nil, fmt.Errorf("create snapshot %q of %q: %w", name, repoName, err)
	}
	return sn, nil
}

// ListSnapshots returns a repository's snapshots.
func (s *Service) ListSnapshots(ctx context.Context, repoName string) ([]meta.Snapshot, error) {
	r, err := s.GetRepo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	return s.meta.ListSnapshots(ctx, r.ID)
}

// DeleteSnapshot deletes a snapshot; its generation is pruned later under
// the usual retention rules.
func (s *Service) DeleteSnapshot(ctx context.Context, repoName, name string) error {
	r, err := s.GetRepo(ctx, repoName)
	if err != nil {
		return err
	}
	err = s.meta.DeleteSnapshot(ctx, r.ID, name)
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: %q of %q", ErrSnapshotNotFound, name, repoName)
	}
	return err
}

// snapshot returns a view of a snapshot's generation.
func (s *Service) snapshot(ctx context.Context, repoName, name string) (*view, *meta.Generation, error) {
	v, err := s.views.get(ctx, repoName)
	if err != nil {
		return nil, nil, err
	}
	sn, err := s.meta.GetSnapshot(ctx, v.repo.ID, name)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %q of %q", ErrSnapshotNotFound, name, repoName)
	}
	if err != nil {
		return nil, nil, err
	}
	g, err := s.meta.GetGeneration(ctx, v.repo.ID, sn.Generation)
	if err != nil {
		return nil, nil, fmt.Errorf("load generation %d of snapshot %q: %w", sn.Generation, name, err)
	}
	return &view{repo: v.repo, gens: []*genView{toGenView(g)}}, g, nil
}

// LookupSnapshot finds what a snapshot serves at p: a file of its
// generation or a package live at it.
func (s *Service) LookupSnapshot(ctx context.Context, repoName, name, p string) (*Object, error) {
	v, g, err := s.snapshot(ctx, repoName, name)
	if err != nil {
		return nil, err
	}
	for _, f := range g.Files {
		if f.Path == p {
			return &Object{Path: p, Digest: f.Digest, Size: f.Size, ContentType: f.ContentType, ModTime: g.CreatedAt, Generation: g.Number, Parts: f.Parts}, nil
		}
	}
	pk, err := s.packageAt(ctx, v, p, g.Seq, g.Seq)
	if err == nil {
		return &Object{Path: p, Digest: pk.Digest, Size: pk.Size, ModTime: pk.UploadedAt, Package: true, Generation: g.Number}, nil
	}
	if !errors.Is(err, meta.ErrNotFound) {
		return nil, err
	}
	if obj, err := s.sidecar(ctx, v, p, g.Seq, g.Seq); obj != nil || err != nil {
		return obj, err
	}
	return nil, ErrObjectNotFound
}

// SeedFromSnapshot copies the packages of a snapshot (given as
// "REPO@NAME") into a new, empty hosted repository of the same format,
// and publishes them.
func (s *Service) SeedFromSnapshot(ctx context.Context, target, from string) error {
	srcName, snapName, ok := strings.Cut(from, "@")
	if !ok || srcName == "" || snapName == "" {
		return fmt.Errorf("%w: from_snapshot %q must be REPO@SNAPSHOT", ErrInvalidRepo, from)
	}
	dst, err := s.GetRepo(ctx, target)
	if err != nil {
		return err
	}
	v, g, err := s.snapshot(ctx, srcName, snapName)
	if err != nil {
		return err
	}
	if v.repo.Format != dst.Format || dst.Kind != meta.KindHosted {
		return fmt.Errorf("%w: a %s snapshot seeds a hosted %s repository only", ErrInvalidRepo, v.repo.Format, v.repo.Format)
	}
	now := s.opts.Now().UTC()
	var last int64
	err = s.meta.LivePackages(ctx, v.repo.ID, g.Seq, func(pk *meta.Package) error {
		cp := *pk
		cp.ID, cp.RepoID, cp.AddedSeq, cp.RemovedSeq = 0, dst.ID, 0, 0
		cp.UploadedBy, cp.UploadedAt = "snapshot "+from, now
		if _, err := s.meta.AddPackage(ctx, &cp); err != nil && !errors.Is(err, meta.ErrExists) {
			return fmt.Errorf("copy %s: %w", pk.Path, err)
		}
		last = max(last, cp.AddedSeq)
		return nil
	})
	if err != nil {
		return err
	}
	s.feed.bump()
	_, err = s.publisher(dst).waitVisible(ctx, last)
	return err
}
