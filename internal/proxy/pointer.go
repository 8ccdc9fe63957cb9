package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// maxPointer bounds one pointer file (a pacman files database of a large
// repository is the biggest); maxParse bounds the part of one that is
// read to find the index files it names.
const (
	maxPointer = 1 << 30
	maxParse   = 64 << 20
)

// groupTimeout bounds one refresh of a pointer group with its index files.
const groupTimeout = 30 * time.Minute

// groupCall is one refresh of a pointer group; concurrent requests wait
// for the same one.
type groupCall struct {
	done chan struct{}
	err  error
}

// servePointer serves a pointer file, refreshing its group first when the
// cached copy is older than max_age.
func (p *Proxy) servePointer(w http.ResponseWriter, r *http.Request, rc *repoConfig, cls class, path string, cacheOnly bool) error {
	ctx := r.Context()
	if cacheOnly {
		rec, err := p.meta.GetProxyFile(ctx, rc.repo.ID, path)
		if errors.Is(err, meta.ErrNotFound) {
			p.metrics.ProxyRequest(rc.repo.Name, "not_found")
			return fmt.Errorf("%w: %s is not cached here (cache-only request)", ErrNotFound, path)
		}
		if err != nil {
			return err
		}
		return p.serveRecord(w, r, rc, rec, cls, "hit")
	}
	fresh, seen, err := p.groupFresh(ctx, rc, cls)
	if err != nil {
		return err
	}
	if fresh && !rc.union && seen != nil && seen.Path == path {
		// The record that showed the group fresh is the one asked for.
		return p.serveRecord(w, r, rc, seen, cls, "hit")
	}
	result := "hit"
	if !fresh {
		result = "revalidated"
		err = p.refreshGroup(ctx, rc, cls)
	}
	if err == nil && rc.union {
		// The merged metadata follows the upstream's: rebuilt when the
		// upstream's repomd.xml changed (cheap to check otherwise).
		err = p.ensureUnion(ctx, rc, cls)
	}
	if err != nil {
		rec, gerr := p.meta.GetProxyFile(ctx, rc.repo.ID, path)
		if gerr != nil {
			if errors.Is(err, ErrNotFound) {
				p.metrics.ProxyRequest(rc.repo.Name, "not_found")
			} else {
				p.metrics.ProxyRequest(rc.repo.Name, "error")
			}
			return err
		}
		p.log.Warn("upstreams failed, serving a stale cached copy", "repo", rc.repo.Name, "path", path,
			"age", p.now().Sub(rec.FetchedAt).Round(time.Second).String(), "err", err)
		return p.serveRecord(w, r, rc, rec, cls, "stale")
	}
	rec, err := p.meta.GetProxyFile(ctx, rc.repo.ID, path)
	if errors.Is(err, meta.ErrNotFound) {
		p.metrics.ProxyRequest(rc.repo.Name, "not_found")
		return fmt.Errorf("%w: the upstream has no %s", ErrNotFound, path)
	}
	if err != nil {
		return err
	}
	return p.serveRecord(w, r, rc, rec, cls, result)
}

// groupFresh reports whether a pointer group was fetched or revalidated
// within max_age (judged by the first member that is cached: a group may
// lack some, such as an InRelease).
// It returns the record it judged by.
func (p *Proxy) groupFresh(ctx context.Context, rc *repoConfig, cls class) (bool, *meta.ProxyFile, error) {
	for i := range cls.count() {
		m := cls.member(i)
		rec, err := p.meta.GetProxyFile(ctx, rc.repo.ID, rc.recPath(m))
		if errors.Is(err, meta.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, nil, err
		}
		return p.now().Sub(rec.FetchedAt) < rc.maxAge, rec, nil
	}
	return false, nil, nil
}

// refreshGroup refreshes a pointer group, or waits for the refresh in
// progress. The refresh itself is detached from ctx: a client that gives
// up does not waste the work done for the others.
func (p *Proxy) refreshGroup(ctx context.Context, rc *repoConfig, cls class) error {
	key := fmt.Sprintf("%d/%s", rc.repo.ID, cls.group())
	p.mu.Lock()
	c, ok := p.groups[key]
	if !ok {
		c = &groupCall{done: make(chan struct{})}
		p.groups[key] = c
		go func() {
			c.err = p.doRefresh(rc, cls)
			p.mu.Lock()
			delete(p.groups, key)
			p.mu.Unlock()
			close(c.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Proxy) doRefresh(rc *repoConfig, cls class) error {
	ctx, cancel := context.WithTimeout(p.ctx, groupTimeout)
	defer cancel()
	old := map[string]*meta.ProxyFile{}
	for i := range cls.count() {
		m := cls.member(i)
		rec, err := p.meta.GetProxyFile(ctx, rc.repo.ID, rc.recPath(m))
		if err == nil {
			old[m] = rec
		} else if !errors.Is(err, meta.ErrNotFound) {
			return err
		}
	}
	var errs []error
	for _, up := range rc.upstreams {
		recs, absent, err := p.fetchGroup(ctx, rc, up, cls, old)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, errBackoff) {
				p.metrics.ProxyUpstreamError(rc.repo.Name, up.base)
			}
			errs = append(errs, err)
			continue
		}
		if err := p.meta.PutProxyFiles(ctx, rc.repo.ID, recs); err != nil {
			return fmt.Errorf("record %s: %w", cls.group(), err)
		}
		for _, m := range absent {
			if old[m] != nil {
				if err := p.meta.DeleteProxyFile(ctx, rc.repo.ID, rc.recPath(m)); err != nil && !errors.Is(err, meta.ErrNotFound) {
					return err
				}
			}
		}
		p.invalidate(rc.repo.ID)
		return nil
	}
	return joinFetchErrors(cls.group(), errs)
}

// fetchGroup fetches a pointer group's members from one upstream
// (conditionally, where cached) and then the index files they name. It
// returns the records to store, index files first, and the members the
// upstream does not have.
func (p *Proxy) fetchGroup(ctx context.Context, rc *repoConfig, up source, cls class, old map[string]*meta.ProxyFile) ([]meta.ProxyFile, []string, error) {
	now := p.now()
	var (
		members []meta.ProxyFile
		absent  []string
		changed = map[string]bool{}
	)
	for i := range cls.count() {
		m := cls.member(i)
		resp, body, err := p.request(ctx, rc, up, m, old[m])
		switch {
		case errors.Is(err, errNotModified) && old[m] != nil:
			rec := *old[m]
			rec.FetchedAt = now
			members = append(members, rec)
			continue
		case errors.Is(err, ErrNotFound):
			absent = append(absent, m)
			continue
		case err != nil:
			return nil, nil, err
		}
		rec, err := p.storeBody(ctx, rc, up, m, resp, body)
		if err != nil {
			return nil, nil, err
		}
		rec.Path = rc.recPath(m)
		rec.FetchedAt, rec.UsedAt = now, now
		members = append(members, *rec)
		changed[m] = old[m] == nil || old[m].Digest != rec.Digest
	}
	if len(absent) == cls.count() {
		return nil, nil, fmt.Errorf("%w: %s has no %s", ErrNotFound, up.base, cls.group())
	}
	named, err := p.namedFiles(ctx, rc, cls, members, changed)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", up.base, err)
	}
	var recs []meta.ProxyFile
	for _, nf := range named {
		recAt := rc.indexRecPath(nf.path)
		cur, err := p.meta.GetProxyFile(ctx, rc.repo.ID, recAt)
		if err == nil && cur.Digest == nf.sha256 {
			continue
		}
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return nil, nil, err
		}
		if _, err := p.blobs.Stat(ctx, blob.Digest(nf.sha256)); err == nil {
			// The bytes are stored already (an earlier version of the
			// index, another path of the same content).
			recs = append(recs, meta.ProxyFile{Path: recAt, Digest: nf.sha256, Size: nf.size,
				ContentType: contentTypeOf(nf.path), Source: up.base, FetchedAt: now, UsedAt: now})
			continue
		}
		res, err := p.fetchNamed(ctx, rc, up, nf)
		if errors.Is(err, ErrNotFound) && nf.optional {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s names %s: %w", cls.group(), nf.path, err)
		}
		recs = append(recs, meta.ProxyFile{Path: recAt, Digest: res.Digest, Size: res.Size, ContentType: res.ContentType,
			ETag: res.ETag, LastModified: res.LastModified, Source: res.Source, FetchedAt: now, UsedAt: now})
	}
	// The pointer last: in one transaction anyway, but in this order a
	// reader of the records sees the files before what names them.
	return append(recs, members...), absent, nil
}

// fetchNamed downloads an index file a pointer names, from peers (which
// must hold the very bytes named) or else from the upstream the pointer
// came from: another upstream may be a mirror at another version. The
// result is checked against the pointer's digest, whatever download it
// came from.
func (p *Proxy) fetchNamed(ctx context.Context, rc *repoConfig, up source, nf namedFile) (*fetched, error) {
	srcs := append(append([]source(nil), rc.peers...), up)
	spec := fetchSpec{path: nf.path, want: nf.sha256, wantSize: nf.size, peers: true, sources: srcs}
	var err error
	// A second try for the rare download that finished with other bytes
	// (one that began before the pointer changed).
	for range 2 {
		var fl *flight
		fl, _, err = p.flightFor(rc, spec)
		if err != nil {
			return nil, err
		}
		var res *fetched
		res, err = fl.wait(ctx)
		fl.leave()
		if err != nil {
			return nil, err
		}
		if nf.sha256 == "" || res.Digest == nf.sha256 {
			return res, nil
		}
		err = fmt.Errorf("%w: %s: downloaded sha256 %s, the pointer names %s", ErrBadGateway, nf.path, res.Digest, nf.sha256)
	}
	return nil, err
}

// storeBody stores a pointer file's body as a blob.
func (p *Proxy) storeBody(ctx context.Context, rc *repoConfig, up source, path string, resp *http.Response, body *idleBody) (*meta.ProxyFile, error) {
	defer body.Close()
	w, err := p.blobs.Create(ctx, maxPointer)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	n, err := io.Copy(w, body)
	p.metrics.ProxyBytes(rc.repo.Name, "upstream", n)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("%w: %s%s: got %d of %d bytes", ErrBadGateway, up.base, path, n, resp.ContentLength)
	}
	if err != nil {
		_ = w.Cancel(context.WithoutCancel(ctx))
		if !errors.Is(err, ErrBadGateway) {
			err = fmt.Errorf("%w: %s%s: %v", ErrBadGateway, up.base, path, err)
		}
		return nil, err
	}
	info, err := w.Commit(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	ct := contentTypeOf(path)
	return &meta.ProxyFile{Path: path, Digest: string(info.Digest), Size: info.Size, ContentType: ct,
		ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Source: up.base}, nil
}
