// Package maint holds the maintenance work on a whole installation:
// verifying every blob and every published generation, repairing from a
// peer, collecting garbage, and migrating between backends. It works on
// the stores directly, so it runs beside live servers (several nodes on one
// PostgreSQL and S3) or on a stopped single-machine installation.
package maint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// Problem is one thing verify found wrong.
type Problem struct {
	// Kind is "corrupt" (a blob whose bytes do not hash to its name),
	// "missing" (a blob a generation or package names that is not
	// stored) or "size" (stored with another size than recorded).
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
	// Where names what refers to the blob: "repo R generation N: PATH" or
	// "repo R package PATH"; empty for a blob nothing was seen naming.
	Where []string `json:"where,omitempty"`
	// Repaired is set when --repair fetched good bytes; Unrepairable says
	// why it could not.
	Repaired     bool   `json:"repaired,omitempty"`
	Unrepairable string `json:"unrepairable,omitempty"`
}

// Report is the result of Verify.
type Report struct {
	BlobsChecked       int       `json:"blobs_checked"`
	BytesHashed        int64     `json:"bytes_hashed"`
	GenerationsChecked int       `json:"generations_checked"`
	PackagesChecked    int       `json:"packages_checked"`
	Problems           []Problem `json:"problems"`
}

// OK reports whether nothing is wrong (or everything was repaired).
func (r *Report) OK() bool {
	for _, p := range r.Problems {
		if !p.Repaired {
			return false
		}
	}
	return true
}

// Fetcher fetches a blob's bytes from elsewhere (a peer packyard).
type Fetcher func(ctx context.Context, d blob.Digest) (io.ReadCloser, error)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// SkipRehash checks only that blobs exist with the right size, without
	// reading them.
	SkipRehash bool
	// Repair, if set, fetches every corrupt or missing blob and stores it
	// (after checking its digest).
	Repair Fetcher
	Log    *slog.Logger
}

// Verify re-hashes every stored blob and checks that every retained
// generation and every package names only stored blobs of the recorded
// size.
func Verify(ctx context.Context, m meta.Store, b blob.Store, opts VerifyOptions) (*Report, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{}
	problems := map[string]*Problem{}
	add := func(kind, d, where string) {
		p := problems[kind+d]
		if p == nil {
			p = &Problem{Kind: kind, Digest: d}
			problems[kind+d] = p
		}
		if where != "" && len(p.Where) < 20 {
			p.Where = append(p.Where, where)
		}
	}

	sizes := map[string]int64{}
	err := b.Walk(ctx, func(info blob.Info) error {
		rep.BlobsChecked++
		sizes[string(info.Digest)] = info.Size
		if opts.SkipRehash {
			return nil
		}
		n, ok, err := rehash(ctx, b, info.Digest)
		rep.BytesHashed += n
		if err != nil {
			return err
		}
		if !ok {
			add("corrupt", string(info.Digest), "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk the blob store: %w", err)
	}
	log.Info("blobs checked", "count", rep.BlobsChecked, "bytes_hashed", rep.BytesHashed)

	check := func(d string, size int64, where string) {
		got, ok := sizes[d]
		switch {
		case !ok:
			add("missing", d, where)
		case problems["corrupt"+d] != nil:
			add("corrupt", d, where)
		case size >= 0 && got != size:
			add("size", d, where)
		}
	}
	repos, err := m.ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		gens, err := m.ListGenerations(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, lg := range gens {
			g, err := m.GetGeneration(ctx, r.ID, lg.Number)
			if errors.Is(err, meta.ErrNotFound) {
				continue // pruned meanwhile
			}
			if err != nil {
				return nil, err
			}
			rep.GenerationsChecked++
			for _, f := range g.Files {
				where := fmt.Sprintf("repo %s generation %d: %s", r.Name, g.Number, f.Path)
				if len(f.Parts) == 0 {
					check(f.Digest, f.Size, where)
					continue
				}
				for _, p := range f.Parts {
					check(p, -1, where)
				}
			}
		}
		var after int64
		for {
			pkgs, err := m.ListPackages(ctx, r.ID, meta.PackageQuery{AfterID: after, Limit: 1000})
			if err != nil {
				return nil, err
			}
			for _, p := range pkgs {
				rep.PackagesChecked++
				check(p.Digest, p.Size, fmt.Sprintf("repo %s package %s", r.Name, p.Path))
				after = p.ID
			}
			if len(pkgs) < 1000 {
				break
			}
		}
	}

	for _, p := range problems {
		rep.Problems = append(rep.Problems, *p)
	}
	sort.Slice(rep.Problems, func(i, j int) bool {
		a, b := rep.Problems[i], rep.Problems[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Digest < b.Digest
	})
	if opts.Repair != nil {
		for i := range rep.Problems {
			p := &rep.Problems[i]
			if err := repair(ctx, b, opts.Repair, p); err != nil {
				p.Unrepairable = err.Error()
				log.Warn("cannot repair blob", "digest", p.Digest, "kind", p.Kind, "err", err)
				continue
			}
			p.Repaired = true
			log.Info("repaired blob", "digest", p.Digest, "kind", p.Kind)
		}
	}
	return rep, nil
}

// rehash reads a blob and reports whether its bytes hash to its name.
func rehash(ctx context.Context, b blob.Store, d blob.Digest) (int64, bool, error) {
	r, err := b.Open(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return 0, true, nil // deleted while walking
	}
	if err != nil {
		return 0, false, fmt.Errorf("open blob %s: %w", d, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, false, fmt.Errorf("read blob %s: %w", d, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)) == string(d), nil
}

// repair replaces a corrupt, missing or wrongly sized blob with bytes
// fetched from elsewhere, which must hash to its name.
func repair(ctx context.Context, b blob.Store, fetch Fetcher, p *Problem) error {
	d := blob.Digest(p.Digest)
	rc, err := fetch(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := b.Create(ctx, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, rc); err != nil {
		_ = w.Cancel(ctx)
		return fmt.Errorf("fetch: %w", err)
	}
	if w.Digest() != d {
		_ = w.Cancel(ctx)
		return fmt.Errorf("the fetched bytes hash to %s: %w", w.Digest(), blob.ErrDigestMismatch)
	}
	if p.Kind != "missing" {
		// The bad copy must go first: a store never overwrites a blob.
		if err := b.Delete(ctx, d); err != nil && !errors.Is(err, blob.ErrNotFound) {
			_ = w.Cancel(ctx)
			return fmt.Errorf("delete the bad copy: %w", err)
		}
	}
	_, err = w.Commit(ctx, d)
	return err
}
