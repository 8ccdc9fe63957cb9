// Package httpapi is packyard's HTTP surface: the JSON API under /api/v1/,
// WebDAV under /dav/, repository files under /<repo>/, health and metrics.
// Every route and the scope it needs is listed in routes.go.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/bytecache"
	"github.com/packyard/packyard/internal/mirror"
	"github.com/packyard/packyard/internal/proxy"
	"github.com/packyard/packyard/internal/repo"
	"github.com/packyard/packyard/internal/sign"
)

// Options configure a Server.
type Options struct {
	// BodyIdleTimeout aborts a request body that moves no byte for this long.
	BodyIdleTimeout time.Duration
	// MaxUploadSize is checked against Content-Length before reading; 0
	// leaves the limit to the repository service.
	MaxUploadSize int64
	// BaseURL is the public URL for generated client configuration; empty
	// means derived from the request.
	BaseURL string
	// Ready reports whether the server can take traffic (/readyz).
	Ready func(ctx context.Context) error
	// Keys is the server's keyring (nil: the key API answers 404).
	Keys *sign.Keyring
	// DefaultKey names the key new repositories are signed with.
	DefaultKey string
	// Proxy serves proxy repositories (nil: their files answer 404).
	Proxy *proxy.Proxy
	// Mirror syncs mirror repositories (nil: sync requests answer 404).
	Mirror *mirror.Mirror
	// ReadCacheSize bounds an in-memory cache of small files (index
	// files) read from the blob store; 0 disables it. ReadCacheMaxFile
	// bounds one file (0: an eighth of the cache): with a local store,
	// whose larger files are served with sendfile, packyard serve keeps
	// only pointer-sized files.
	ReadCacheSize, ReadCacheMaxFile int64
}

// Server holds the handlers' dependencies.
type Server struct {
	svc     *repo.Service
	auth    *auth.Authenticator
	metrics *Metrics
	log     *slog.Logger
	opts    Options
	mux     *http.ServeMux
	cache   *bytecache.Cache
	// proxyCfgs caches proxy repositories' parsed settings.
	proxyCfgs proxyConfigs
}

// New builds the Server and its routes.
func New(svc *repo.Service, a *auth.Authenticator, m *Metrics, log *slog.Logger, opts Options) *Server {
	if opts.BodyIdleTimeout == 0 {
		opts.BodyIdleTimeout = time.Minute
	}
	s := &Server{svc: svc, auth: a, metrics: m, log: log, opts: opts, mux: http.NewServeMux(),
		cache: bytecache.New(opts.ReadCacheSize, opts.ReadCacheMaxFile)}
	registerReadCache(s.cache, m)
	s.routes()
	return s
}

// ServeHTTP serves a request and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	if repo, rest, ok := fileRoute(r); ok {
		// What the mux would do, without matching every pattern.
		r.Pattern = filePattern
		if r, ok := s.authorize(rw, r, "", repo); ok {
			s.serveFileAt(rw, r, repo, rest)
		}
	} else {
		s.mux.ServeHTTP(rw, r)
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(route, r.Method, rw.code, time.Since(start))
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// ReadFrom forwards to the underlying writer's ReadFrom, so that
// http.ServeContent of a local file still reaches sendfile through this
// wrapper.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// writerOnly hides every method but Write (io.Copy would otherwise call
// ReadFrom again).
type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the underlying writer (server-sent events).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type principalKey struct{}

// principal returns the authenticated principal of a request (nil if none).
func principal(r *http.Request) *auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	return p
}

// need wraps h so that it runs only for a principal with scope on the
// request's {repo} (or on everything, for routes without one). scope ""
// means public: credentials are still checked when sent.
func (s *Server) need(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.authorize(w, r, scope, r.PathValue("repo")); ok {
			h(w, r)
		}
	}
}

// authorize authenticates r and checks that its principal has scope on
// repoName ("" scope: anyone may). It returns r with the principal in its
// context, or answers the error itself and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope, repoName string) (*http.Request, bool) {
	p, err := s.auth.Authenticate(r.Context(), r)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			s.writeError(w, r, errUnauthorized)
			return r, false
		}
		s.writeError(w, r, err)
		return r, false
	}
	if scope != "" {
		if p == nil {
			s.writeError(w, r, errUnauthorized)
			return r, false
		}
		if !p.Allows(scope, repoName) {
			s.writeError(w, r, forbidden(p, scope, repoName))
			return r, false
		}
	}
	if p != nil {
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	}
	return r, true
}

func forbidden(p *auth.Principal, scope, repoName string) error {
	if repoName == "" {
		return errors.Join(errForbidden, errors.New("token "+p.Name+" (scope "+p.Scope+") cannot do this: it needs scope "+scope+" on all repositories"))
	}
	return errors.Join(errForbidden, errors.New("token "+p.Name+" (scope "+p.Scope+") lacks scope "+scope+" on repository "+repoName))
}

// idleBody aborts a request body that stalls: every read extends the
// connection's read deadline by the idle timeout, so a slow but moving
// upload of any size succeeds and a stalled one is cut off.
type idleBody struct {
	rc      *http.ResponseController
	body    interface{ Read([]byte) (int, error) }
	timeout time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.body.Read(p)
	if err != nil {
		// The body is done: an upload that then waits for its publish
		// must not be cut off by the deadline of its last read.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (s *Server) body(w http.ResponseWriter, r *http.Request) *idleBody {
	return &idleBody{rc: http.NewResponseController(w), body: r.Body, timeout: s.opts.BodyIdleTimeout}
}
