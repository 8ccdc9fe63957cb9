package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/httpfast"
	"github.com/packyard/packyard/internal/meta"
)

// ServeFast answers the requests of the fast path (internal/httpfast)
// that it can as ServeHTTP would: a GET or HEAD, without credentials, of
// a proxy repository's file held in memory (proxy.ServeFast). It returns
// false, having done nothing, for everything else.
func (s *Server) ServeFast(req *httpfast.Request, resp *httpfast.Response) bool {
	if s.opts.Proxy == nil {
		return false
	}
	start := time.Now()
	repoName, rest, ok := filePath(req.Path)
	// Snapshots (@NAME/…) and listings are served otherwise.
	if !ok || strings.HasPrefix(rest, "@") || strings.HasSuffix(rest, "/") {
		return false
	}
	rp, err := s.svc.CachedRepo(context.Background(), repoName)
	if err != nil || rp.Kind != meta.KindProxy {
		return false
	}
	cfg, err := s.proxyConfig(rp)
	if err != nil || !s.opts.Proxy.ServeFast(rp, cfg, rest, req, resp) {
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
