package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/httpfast"
	"github.com/packyard/packyard/internal/meta"
)

// ServeFast answers the requests of the fast path (internal/httpfast)
// that it can as ServeHTTP would: a GET or HEAD, without credentials, of
// a file held in memory — an index or pointer file of a repository's
// current generation in the read cache, or a proxy repository's cached
// file (proxy.ServeFast). It returns false, having done nothing, for
// everything else.
func (s *Server) ServeFast(req *httpfast.Request, resp *httpfast.Response) bool {
	start := time.Now()
	repoName, rest, ok := filePath(req.Path)
	// Snapshots (@NAME/…) and listings are served otherwise.
	if !ok || strings.HasPrefix(rest, "@") || strings.HasSuffix(rest, "/") {
		return false
	}
	ctx := context.Background()
	rp, err := s.svc.CachedRepo(ctx, repoName)
	if err != nil {
		return false
	}
	if rp.Kind == meta.KindProxy {
		if s.opts.Proxy == nil {
			return false
		}
		cfg, err := s.proxyConfig(rp)
		if err != nil || !s.opts.Proxy.ServeFast(rp, cfg, rest, req, resp) {
			return false
		}
	} else if !s.serveFastIndex(ctx, repoName, rest, req, resp) {
		return false
	}
	method := http.MethodGet
	if req.Head {
		method = http.MethodHead
	}
	s.metrics.observe(filePattern, method, http.StatusOK, time.Since(start))
	s.metrics.fast.Inc()
	return true
}

// serveFastIndex answers as serveObject would for a file of the current
// generation whose bytes the read cache holds.
func (s *Server) serveFastIndex(ctx context.Context, repoName, p string, req *httpfast.Request, resp *httpfast.Response) bool {
	obj, ok := s.svc.LookupIndex(ctx, repoName, p)
	// An index assembled from parts is cached whole, by its digest, as
	// for serveObject.
	if !ok || obj.Package || !s.cache.Fits(obj.Size) {
		return false
	}
	imm := immutable(obj)
	if imm && req.IfModifiedSince {
		return false // ServeContent decides: perhaps a 304
	}
	b, ok := s.cache.Hit(obj.Digest)
	if !ok {
		return false
	}
	resp.Header("Etag", `"`+obj.Digest+`"`)
	ct := obj.ContentType
	if ct == "" {
		ct = contentTypeOf(obj.Path)
	}
	resp.Header("Content-Type", ct)
	resp.Header("Cache-Control", cacheControl(obj))
	resp.Header("X-Packyard-Generation", strconv.FormatInt(obj.Generation, 10))
	resp.Header("Accept-Ranges", "bytes")
	if imm {
		resp.Header("Last-Modified", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	resp.Body(b)
	return true
}
