package httpapi

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/httpfast"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// ServeFast answers the requests of the fast path (internal/httpfast)
// that it can as ServeHTTP would: a GET or HEAD, without credentials, of
// a hosted or mirror repository's file in the read cache or on a local
// store (serveFastObject), or of a proxy repository's cached file held in
// memory (proxy.ServeFast). It returns false, having done nothing, for
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
	} else if !s.serveFastObject(ctx, repoName, rest, req, resp) {
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

// serveFastObject answers as serveObject would for a plain GET or HEAD
// of a hosted or mirror repository's file: a file the read cache takes
// from memory (on a local store, read into it first), a larger file of a
// local store with sendfile. Remote stores' files not in the cache (a
// network read, perhaps a redirect), larger files assembled from parts
// and files derived from a package are left to serveObject.
func (s *Server) serveFastObject(ctx context.Context, repoName, p string, req *httpfast.Request, resp *httpfast.Response) bool {
	_, local := s.svc.Blobs().(localStore)
	obj, ok := s.svc.LookupIndex(ctx, repoName, p)
	if !ok {
		// Packages, and files of retained older generations: what
		// Lookup costs net/http too (a few indexed queries).
		var err error
		if !local {
			return false
		}
		if obj, err = s.svc.Lookup(ctx, repoName, p); err != nil {
			return false
		}
	}
	if obj.Data != nil {
		return false // derived from a package: serveObject's
	}
	var body []byte
	if s.cache.Fits(obj.Size) {
		if !local {
			if body, ok = s.cache.Hit(obj.Digest); !ok {
				return false // net/http reads it from the store, and caches it
			}
		} else if body = s.cachedSmall(ctx, obj); body == nil {
			return false
		}
	} else if !local || len(obj.Parts) > 0 {
		return false
	}
	imm := immutable(obj)
	if imm && req.IfModifiedSince {
		return false // ServeContent decides: perhaps a 304
	}
	if body != nil {
		resp.Body(body)
	} else {
		rd, err := s.svc.Open(ctx, obj)
		if err != nil {
			return false // net/http reports it
		}
		f, isFile := rd.(*os.File)
		var fi os.FileInfo
		if isFile {
			fi, err = f.Stat()
		}
		if !isFile || err != nil {
			_ = rd.Close()
			return false
		}
		// The file's own size, as ServeContent takes it (a blob that is
		// not what its record says is verify's to report).
		resp.File(f, fi.Size(), s.writeBudget(obj))
	}
	objectHeaders(obj, resp.Header)
	resp.Header("Accept-Ranges", "bytes")
	if imm {
		resp.Header("Last-Modified", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	return true
}

// cachedSmall returns the bytes of obj, a file the read cache takes, of a
// local store: from the cache, or read and put in it as bufferSmall
// would. nil if they cannot be read or do not match their digest (then
// net/http answers as it would).
func (s *Server) cachedSmall(ctx context.Context, obj *repo.Object) []byte {
	if b, ok := s.cache.Get(obj.Digest); ok {
		return b
	}
	rd, err := s.svc.Open(ctx, obj)
	if err != nil {
		return nil
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, obj.Size+1))
	if err != nil || !s.cache.Put(obj.Digest, b) {
		return nil
	}
	return b
}

// localStore is a blob store on local disk (fsblob), whose blobs open as
// files.
type localStore interface{ Path(blob.Digest) string }
