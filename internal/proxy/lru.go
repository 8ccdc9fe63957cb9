package proxy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// Size cap (Config.MaxSize). Only package files count and are evicted:
// pointer and index files are small and what they name must stay
// servable, and in union mode a package with rendered entries is named by
// the merged metadata for good, so it is kept too. Past the cap the least
// recently served packages are evicted until the cache is at 90% of it.

// touchEvery is how often serving a file updates its UsedAt: often enough
// for LRU order, rarely enough not to write on every hit.
const touchEvery = time.Minute

// cacheSize is what the proxy knows of a repository's evictable bytes.
type cacheSize struct {
	total    int64
	known    bool
	evicting bool
	// dirty: files were added while a scan ran, which it may have missed.
	dirty bool
}

// evictable reports whether a record is a package file the cap may evict.
func evictable(format string, f *meta.ProxyFile) bool {
	c := classify(format, f.Path)
	return c.kind == kindImmutable && c.byHash == "" && f.Fragments == "" && f.Source != "union" &&
		!strings.HasPrefix(f.Path, upstreamPrefix) && !strings.Contains(f.Path, "repodata/") && !strings.HasPrefix(f.Path, "dists/")
}

// used records that a cached file was served (LRU order), at most every
// touchEvery per file.
func (p *Proxy) used(rc *repoConfig, rec *meta.ProxyFile) {
	if rc.maxSize <= 0 || rec.Source == "by-hash" {
		return
	}
	now := p.now()
	if now.Sub(rec.UsedAt) < touchEvery {
		return
	}
	if err := p.meta.TouchProxyFile(p.ctx, rc.repo.ID, rec.Path, time.Time{}, now); err != nil && !errors.Is(err, meta.ErrNotFound) {
		p.log.Warn("cannot record a cache hit", "repo", rc.repo.Name, "path", rec.Path, "err", err)
	}
}

// added accounts for a newly cached file and evicts past the cap.
func (p *Proxy) added(rc *repoConfig, f *meta.ProxyFile) {
	if rc.maxSize <= 0 || !evictable(rc.repo.Format, f) {
		return
	}
	p.mu.Lock()
	cs := p.sizes[rc.repo.ID]
	if cs == nil {
		cs = &cacheSize{}
		p.sizes[rc.repo.ID] = cs
	}
	if cs.known {
		cs.total += f.Size
	}
	if cs.evicting {
		cs.dirty = true
	}
	start := !cs.evicting && (!cs.known || cs.total > rc.maxSize)
	if start {
		cs.evicting = true
	}
	p.mu.Unlock()
	if start {
		go p.evict(rc, cs)
	}
}

// evict measures the repository's evictable bytes and, past the cap,
// deletes the least recently used packages down to 90% of it.
func (p *Proxy) evict(rc *repoConfig, cs *cacheSize) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Minute)
	defer cancel()
	var files []meta.ProxyFile
	var total int64
	err := p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		if evictable(rc.repo.Format, f) {
			files = append(files, *f)
			total += f.Size
		}
		return nil
	})
	if err == nil && total > rc.maxSize {
		slices.SortFunc(files, func(a, b meta.ProxyFile) int { return a.UsedAt.Compare(b.UsedAt) })
		target := rc.maxSize / 10 * 9
		n := 0
		for _, f := range files {
			if total <= target {
				break
			}
			if p.busy(f.Digest) {
				// A response is reading it: deleting the blob (on S3,
				// where an open object is read in ranges) would cut it.
				continue
			}
			if err = p.evictOne(ctx, rc, f); err != nil {
				break
			}
			total -= f.Size
			n++
		}
		p.log.Info("proxy cache over its size cap: evicted the least recently used packages", "repo", rc.repo.Name,
			"evicted", n, "bytes", total, "cap", rc.maxSize)
	}
	if err != nil {
		p.log.Warn("proxy cache eviction failed", "repo", rc.repo.Name, "err", err)
	}
	p.mu.Lock()
	cs.total, cs.known, cs.evicting = total, err == nil && !cs.dirty, false
	cs.dirty = false
	p.mu.Unlock()
}

// busy reports whether a response of this node is reading a blob.
func (p *Proxy) busy(digest string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reading[digest] > 0
}

// evictOne drops a record, and its blob unless something else names it.
func (p *Proxy) evictOne(ctx context.Context, rc *repoConfig, f meta.ProxyFile) error {
	if err := p.meta.DeleteProxyFile(ctx, rc.repo.ID, f.Path); err != nil && !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	ref, err := p.meta.DigestReferenced(ctx, f.Digest)
	if err != nil || ref || p.busy(f.Digest) {
		return err
	}
	if err := p.blobs.Delete(ctx, blob.Digest(f.Digest)); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	p.metrics.ProxyRequest(rc.repo.Name, "evicted")
	return nil
}
