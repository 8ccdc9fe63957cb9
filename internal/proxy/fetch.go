package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// HeaderCacheOnly, sent by a peer, asks for a file only if it is already
// cached: the answer is the file or 404, and never starts a fetch, so peers
// that list each other cannot loop.
const HeaderCacheOnly = "X-Packyard-Cache-Only"

// HeaderCache tells a client how a proxy answered: hit, miss, coalesced
// (joined a download in flight), revalidated, or stale (the upstreams
// could not be reached and a cached copy was served).
const HeaderCache = "X-Packyard-Cache"

// source is one place a file can come from.
type source struct {
	base string // URL ending in "/"
	peer bool
}

// fetchSpec says what to fetch and how to check it.
type fetchSpec struct {
	path string
	// want is the expected hex sha256 ("" when no index names the file)
	// and wantSize its size (-1 when unknown).
	want     string
	wantSize int64
	// peers asks peers first (files whose content is pinned by a digest
	// or never changes under their path).
	peers bool
	// record stores the path → digest record when the flight succeeds;
	// files fetched with their pointer are recorded with it instead.
	record bool
	// sources, when set, are the only places to fetch from (the index
	// files of a pointer group come from the upstream the pointer came
	// from, or from peers that hold the very bytes it names).
	sources []source
}

// errNotModified is a conditional GET's 304.
var errNotModified = errors.New("not modified")

// request GETs path from src. It returns the response on 200 (the caller
// closes its body), errNotModified on 304, and otherwise an error that
// says whether the file is missing (ErrNotFound), the source timed out
// (ErrGatewayTimeout) or failed (ErrBadGateway). The returned cancel must
// be called when the body is done; touch extends the idle deadline.
func (p *Proxy) request(ctx context.Context, rc *repoConfig, src source, path string, cond *meta.ProxyFile) (*http.Response, *idleBody, error) {
	if err := p.skipped(src.base); err != nil {
		return nil, nil, err
	}
	cctx, cancelCause := context.WithCancelCause(withOrigins(ctx, rc))
	cancel := func() { cancelCause(context.Canceled) }
	timeout := rc.timeout
	if src.peer && timeout > peerTimeout {
		timeout = peerTimeout
	}
	t := time.AfterFunc(timeout, func() { cancelCause(errIdle) })
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, upstreamURL(src.base, path), nil)
	if err != nil {
		t.Stop()
		cancel()
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrBadGateway, src.base, err)
	}
	req.Header.Set("User-Agent", "packyard-proxy")
	// Bytes are verified and stored as they are sent: no transparent
	// decompression.
	req.Header.Set("Accept-Encoding", "identity")
	if src.peer {
		req.Header.Set(HeaderCacheOnly, "1")
	}
	if cond != nil && !src.peer {
		if cond.ETag != "" {
			req.Header.Set("If-None-Match", cond.ETag)
		}
		if cond.LastModified != "" {
			req.Header.Set("If-Modified-Since", cond.LastModified)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Stop()
		cancel()
		if errors.Is(err, errRedirect) {
			p.log.Warn("upstream redirect refused", "repo", rc.repo.Name, "path", path, "err", err)
			return nil, nil, fmt.Errorf("%w: %s%s: %w", ErrBadGateway, src.base, path, err)
		}
		if errors.Is(context.Cause(cctx), errIdle) || isTimeout(err) {
			err = fmt.Errorf("%w: %s%s: no answer within %s", ErrGatewayTimeout, src.base, path, timeout)
		} else {
			err = fmt.Errorf("%w: %s%s: %v", ErrBadGateway, src.base, path, err)
		}
		if ctx.Err() == nil {
			p.failed(src.base, err)
		}
		return nil, nil, err
	}
	body := &idleBody{r: resp.Body, t: t, d: timeout, cancel: cancel}
	switch resp.StatusCode {
	case http.StatusOK:
		p.succeeded(src.base)
		return resp, body, nil
	case http.StatusNotModified:
		p.succeeded(src.base)
		body.Close()
		return nil, nil, errNotModified
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
		p.succeeded(src.base)
		body.Close()
		return nil, nil, fmt.Errorf("%w: %s%s answered %s", ErrNotFound, src.base, path, resp.Status)
	}
	body.Close()
	err = fmt.Errorf("%w: %s%s answered %s", ErrBadGateway, src.base, path, resp.Status)
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		p.failed(src.base, err)
	}
	return nil, nil, err
}

// errIdle cancels a request that stalled.
var errIdle = errors.New("upstream idle")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// peerTimeout bounds a peer's answer: a peer only ever serves from its
// cache, so a slow one is skipped quickly for the upstreams.
const peerTimeout = 5 * time.Second

// idleBody cancels its request when no byte arrives for d.
type idleBody struct {
	r      io.ReadCloser
	t      *time.Timer
	d      time.Duration
	cancel context.CancelFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.t.Reset(b.d)
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: download cut off: %v", ErrBadGateway, err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.t.Stop()
	err := b.r.Close()
	b.cancel()
	return err
}

// runFlight downloads spec.path into fl from the first source that has it,
// checks it and stores it. It runs detached from the clients' requests, so
// that a client that goes away does not stop the download for the others.
func (p *Proxy) runFlight(rc *repoConfig, fl *flight, spec fetchSpec) {
	defer fl.leave()
	res, err := p.download(rc, fl, spec)
	if err == nil && spec.record {
		now := p.now()
		frags := ""
		if rc.union && unionPackage(rc.repo.Format, spec.path) {
			// Union metadata keeps naming the package after the upstream
			// drops it: its index entries are rendered now, once.
			var ferr error
			if frags, ferr = p.renderFragments(rc, spec.path, res); ferr != nil {
				p.log.Warn("cached package cannot be parsed: union metadata will not keep it", "repo", rc.repo.Name, "path", spec.path, "err", ferr)
			}
		}
		rec := meta.ProxyFile{
			Path: spec.path, Digest: res.Digest, Size: res.Size, ContentType: res.ContentType,
			ETag: res.ETag, LastModified: res.LastModified, Source: res.Source, FetchedAt: now, UsedAt: now,
			Fragments: frags,
		}
		err = p.meta.PutProxyFiles(p.ctx, rc.repo.ID, []meta.ProxyFile{rec})
		if err != nil {
			err = fmt.Errorf("record %s: %w", spec.path, err)
		} else {
			p.added(rc, &rec)
		}
	}
	if err != nil {
		p.log.Warn("proxy download failed", "repo", rc.repo.Name, "path", spec.path, "err", err)
		res = nil
	}
	p.mu.Lock()
	if p.flights[fl.key] == fl {
		delete(p.flights, fl.key)
	}
	p.mu.Unlock()
	fl.finish(res, err)
}

func (p *Proxy) download(rc *repoConfig, fl *flight, spec fetchSpec) (*fetched, error) {
	var errs []error
	srcs := spec.sources
	if srcs == nil {
		srcs = rc.sources(spec.peers)
	}
	for _, src := range srcs {
		resp, body, err := p.request(p.ctx, rc, src, spec.path, nil)
		if err != nil {
			if !src.peer && !errors.Is(err, ErrNotFound) && !errors.Is(err, errBackoff) {
				p.metrics.ProxyUpstreamError(rc.repo.Name, src.base)
			}
			if !src.peer {
				errs = append(errs, err)
			}
			continue
		}
		if spec.wantSize >= 0 && resp.ContentLength >= 0 && resp.ContentLength != spec.wantSize {
			body.Close()
			err := fmt.Errorf("%w: %s%s is %d bytes, its index says %d", ErrBadGateway, src.base, spec.path, resp.ContentLength, spec.wantSize)
			if !src.peer {
				p.metrics.ProxyUpstreamError(rc.repo.Name, src.base)
				errs = append(errs, err)
			}
			continue
		}
		if etag := strings.Trim(resp.Header.Get("ETag"), `"`); src.peer && spec.want != "" && etag != "" && etag != spec.want {
			// A peer's ETag is the file's sha256: this peer holds
			// another version (its copy of an index is older or newer).
			body.Close()
			p.log.Debug("peer holds another version, skipped", "repo", rc.repo.Name, "path", spec.path, "peer", src.base, "etag", etag, "want", spec.want)
			continue
		}
		res, err := p.receive(rc, fl, spec, src, resp, body)
		if err != nil && src.peer && fl.rewind() {
			// Nothing reached a client yet: a peer whose bytes do not
			// check out is skipped like one that lacks the file.
			p.log.Warn("peer copy refused, trying the next source", "repo", rc.repo.Name, "path", spec.path, "peer", src.base, "err", err)
			continue
		}
		if err != nil && !src.peer {
			p.metrics.ProxyUpstreamError(rc.repo.Name, src.base)
		}
		// Bytes may already be on their way to clients: no failover
		// past this point, the followers are aborted instead.
		return res, err
	}
	return nil, joinFetchErrors(spec.path, errs)
}

// joinFetchErrors turns the failures of every upstream into one error:
// not found if every upstream said so, a timeout if one timed out and
// none answered otherwise, a bad gateway else.
func joinFetchErrors(path string, errs []error) error {
	if len(errs) == 0 {
		return fmt.Errorf("%w: %s: no upstream", ErrBadGateway, path)
	}
	all404, timeout := true, false
	for _, e := range errs {
		if !errors.Is(e, ErrNotFound) {
			all404 = false
		}
		if errors.Is(e, ErrGatewayTimeout) {
			timeout = true
		}
	}
	msg := make([]string, len(errs))
	for i, e := range errs {
		msg[i] = e.Error()
	}
	switch {
	case all404:
		return fmt.Errorf("%w: no upstream has %s (%s)", ErrNotFound, path, strings.Join(msg, "; "))
	case timeout:
		return fmt.Errorf("%w: %s is not cached and no upstream delivered it (%s)", ErrGatewayTimeout, path, strings.Join(msg, "; "))
	}
	return fmt.Errorf("%w: %s is not cached and no upstream delivered it (%s)", ErrBadGateway, path, strings.Join(msg, "; "))
}

// receive copies a 200 response into the flight and the blob store and
// checks its length and digest.
func (p *Proxy) receive(rc *repoConfig, fl *flight, spec fetchSpec, src source, resp *http.Response, body *idleBody) (*fetched, error) {
	defer body.Close()
	w, err := p.blobs.Create(p.ctx, p.maxFile)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", spec.path, err)
	}
	// By the path, not as the upstream says: an upstream's text/html
	// would be served from packyard's origin.
	ct := contentTypeOf(spec.path)
	fl.start(resp.ContentLength, ct, src.base)
	sink := newSink(fl, w, p.maxFile)
	_, err = io.Copy(sink, body)
	kind := "upstream"
	if src.peer {
		kind = "peer"
	}
	p.metrics.ProxyBytes(rc.repo.Name, kind, sink.count)
	got := sink.digest()
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %s%s: %v", ErrBadGateway, src.base, spec.path, err)
	case resp.ContentLength >= 0 && sink.count != resp.ContentLength:
		err = fmt.Errorf("%w: %s%s: got %d of %d bytes", ErrBadGateway, src.base, spec.path, sink.count, resp.ContentLength)
	case spec.wantSize >= 0 && sink.count != spec.wantSize:
		err = fmt.Errorf("%w: %s%s: got %d bytes, its index says %d", ErrBadGateway, src.base, spec.path, sink.count, spec.wantSize)
	case spec.want != "" && got != spec.want:
		err = fmt.Errorf("%w: %s%s: sha256 %s, its index says %s", ErrBadGateway, src.base, spec.path, got, spec.want)
	}
	if err != nil {
		_ = w.Cancel(context.WithoutCancel(p.ctx))
		return nil, err
	}
	info, err := w.Commit(p.ctx, blob.Digest(got))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", spec.path, err)
	}
	return &fetched{
		Digest: string(info.Digest), Size: info.Size, ContentType: ct,
		ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Source: src.base,
	}, nil
}

// contentTypeOf guesses a content type from a file name.
func contentTypeOf(p string) string {
	switch {
	case strings.HasSuffix(p, ".rpm"):
		return "application/x-rpm"
	case strings.HasSuffix(p, ".deb"), strings.HasSuffix(p, ".udeb"):
		return "application/vnd.debian.binary-package"
	case strings.HasSuffix(p, ".xml"):
		return "application/xml"
	case strings.HasSuffix(p, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(p, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(p, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(p, ".asc"), strings.HasSuffix(p, ".sig"), strings.HasSuffix(p, ".gpg"):
		return "application/pgp-signature"
	case strings.HasSuffix(p, ".key"):
		return "application/pgp-keys"
	case strings.HasSuffix(p, "Release"), strings.HasSuffix(p, "InRelease"), strings.HasSuffix(p, "/Packages"):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// unionPackage reports whether a path is a package whose index entries a
// union repository keeps.
func unionPackage(format, p string) bool {
	switch format {
	case meta.FormatRPM:
		return strings.HasSuffix(p, ".rpm")
	case meta.FormatDeb:
		return strings.HasSuffix(p, ".deb")
	case meta.FormatArch:
		return strings.Contains(path.Base(p), ".pkg.tar") && !strings.HasSuffix(p, ".sig")
	}
	return false
}
