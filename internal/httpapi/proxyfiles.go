package httpapi

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/proxy"
	"github.com/packyard/packyard/internal/repo"
)

// serveProxy serves GET/HEAD of a file of a proxy repository through the
// proxy (internal/proxy), or the repository's client configuration file.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, rp *meta.Repo, p string) {
	repoName := rp.Name
	if s.opts.Proxy == nil {
		s.writeError(w, r, errors.Join(errNotFound, errors.New("this server does not serve proxy repositories")))
		return
	}
	cfg, err := s.proxyConfig(rp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.opts.Proxy.Serve(w, r, rp, cfg, p)
	if err == nil || r.Context().Err() != nil {
		return // served, or the client is gone
	}
	if errors.Is(err, proxy.ErrNotFound) && r.Header.Get(proxy.HeaderCacheOnly) == "" && s.clientConfig(w, r, repoName, p) {
		return
	}
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, proxy.ErrBadPath):
		status, code = http.StatusBadRequest, "bad_path"
	case errors.Is(err, proxy.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, proxy.ErrGatewayTimeout):
		status, code = http.StatusGatewayTimeout, "upstream_timeout"
	case errors.Is(err, proxy.ErrBadGateway):
		status, code = http.StatusBadGateway, "upstream_failed"
	default:
		s.writeError(w, r, err)
		return
	}
	if status != http.StatusNotFound && status != http.StatusBadRequest {
		s.log.Warn("proxy request failed", "repo", repoName, "path", p, "status", status, "err", err)
	}
	writeJSON(w, status, apiError{Error: err.Error(), Code: code})
}

// proxyConfigs remembers the proxy configuration of each repository as
// the read path holds it (one *meta.Repo until its configuration changes),
// so that a request does not parse the repository's JSON settings.
type proxyConfigs struct {
	mu sync.RWMutex
	m  map[*meta.Repo]proxy.Config
}

func (s *Server) proxyConfig(rp *meta.Repo) (proxy.Config, error) {
	s.proxyCfgs.mu.RLock()
	cfg, ok := s.proxyCfgs.m[rp]
	s.proxyCfgs.mu.RUnlock()
	if ok {
		return cfg, nil
	}
	st, err := repo.RepoSettings(rp)
	if err != nil {
		return cfg, err
	}
	cfg = proxy.Config{Upstreams: st.Upstreams, Peers: st.Peers, Union: st.Mode == repo.ModeUnion}
	cfg.MaxAge, _ = time.ParseDuration(st.MaxAge)
	cfg.Timeout, _ = time.ParseDuration(st.UpstreamTimeout)
	if st.MaxCacheSize != "" {
		cfg.MaxSize, _ = repo.ParseSize(st.MaxCacheSize)
	}
	s.proxyCfgs.mu.Lock()
	if s.proxyCfgs.m == nil || len(s.proxyCfgs.m) > 1024 {
		// Entries of replaced repository records are dropped wholesale.
		s.proxyCfgs.m = map[*meta.Repo]proxy.Config{}
	}
	s.proxyCfgs.m[rp] = cfg
	s.proxyCfgs.mu.Unlock()
	return cfg, nil
}
