package maint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// GCOptions tune GC.
type GCOptions struct {
	// Grace is how old a blob must be before it may be deleted: a blob
	// being uploaded is stored before the row that names it is written, by
	// any node. It must be longer than an upload takes from its blob's
	// commit to its row, and than the generation grace (index files of a
	// generation being built). Default 24 hours.
	Grace time.Duration
	// DryRun reports what would be deleted without deleting.
	DryRun bool
	Now    func() time.Time
	Log    *slog.Logger
}

// GCReport is the result of GC.
type GCReport struct {
	Blobs      int   `json:"blobs"`
	Referenced int   `json:"referenced"`
	Young      int   `json:"young"`
	Deleted    int   `json:"deleted"`
	Freed      int64 `json:"bytes_freed"`
	DryRun     bool  `json:"dry_run,omitempty"`
}

// GC deletes blobs that no package (live or removed) and no retained
// generation names and that are older than the grace period. It is safe
// while servers run: the set of references is read after the blobs are
// listed, so a blob stored and named meanwhile is either too young or
// referenced; each candidate is checked again, alone, just before it is
// deleted.
func GC(ctx context.Context, m meta.Store, b blob.Store, opts GCOptions) (*GCReport, error) {
	if opts.Grace <= 0 {
		opts.Grace = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cutoff := opts.Now().Add(-opts.Grace)
	rep := &GCReport{DryRun: opts.DryRun}
	var old []blob.Info
	err := b.Walk(ctx, func(info blob.Info) error {
		rep.Blobs++
		if info.ModTime.After(cutoff) {
			rep.Young++
			return nil
		}
		old = append(old, info)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk the blob store: %w", err)
	}
	refs := map[string]bool{}
	if err := m.WalkReferences(ctx, func(d string) error { refs[d] = true; return nil }); err != nil {
		return nil, err
	}
	for _, info := range old {
		if refs[string(info.Digest)] {
			rep.Referenced++
			continue
		}
		// Again, alone: named since the list was read, or stored again
		// (a store refreshes the time of a blob written a second time)?
		if ref, err := m.DigestReferenced(ctx, string(info.Digest)); err != nil || ref {
			if err != nil {
				return rep, err
			}
			rep.Referenced++
			continue
		}
		if cur, err := b.Stat(ctx, info.Digest); err != nil || cur.ModTime.After(cutoff) {
			if err != nil && !errors.Is(err, blob.ErrNotFound) {
				return rep, err
			}
			rep.Young++
			continue
		}
		if opts.DryRun {
			rep.Deleted++
			rep.Freed += info.Size
			continue
		}
		if err := b.Delete(ctx, info.Digest); err != nil {
			if errors.Is(err, blob.ErrNotFound) {
				continue
			}
			return rep, fmt.Errorf("delete blob %s: %w", info.Digest, err)
		}
		rep.Deleted++
		rep.Freed += info.Size
		log.Debug("deleted blob", "digest", info.Digest, "size", info.Size)
	}
	log.Info("garbage collected", "blobs", rep.Blobs, "deleted", rep.Deleted, "bytes_freed", rep.Freed, "dry_run", opts.DryRun)
	return rep, nil
}
