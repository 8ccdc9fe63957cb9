package proxy

// Answers from the cache: a cached file's headers, its body from memory
// or from the blob store, and the fast path's answers (ServeFast).

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/httpfast"
	"github.com/packyard/packyard/internal/meta"
)

// serveRecord serves a cached file with ServeContent semantics.
func (p *Proxy) serveRecord(w http.ResponseWriter, r *http.Request, rc *repoConfig, rec *meta.ProxyFile, cls class, result string) error {
	// Small files (the pointer files every client of a fleet asks for)
	// are answered from memory: no open, seek and sendfile per request,
	// and no blob to keep from eviction while it is sent.
	small := p.small.Fits(rec.Size)
	if small {
		if b, ok := p.small.Get(rec.Digest); ok {
			p.serveBytes(w, r, rc, rec, cls, result, b)
			return nil
		}
	}
	p.mu.Lock()
	p.reading[rec.Digest]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.reading[rec.Digest]--; p.reading[rec.Digest] <= 0 {
			delete(p.reading, rec.Digest)
		}
		p.mu.Unlock()
	}()
	rd, err := p.blobs.Open(r.Context(), blob.Digest(rec.Digest))
	if err != nil {
		return err
	}
	defer rd.Close()
	if small {
		b, err := io.ReadAll(io.LimitReader(rd, rec.Size+1))
		if err != nil {
			return err
		}
		p.small.Put(rec.Digest, b) // only if the bytes match the digest
		p.serveBytes(w, r, rc, rec, cls, result, b)
		return nil
	}
	p.setHeaders(w.Header(), rc, rec, cls, result)
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, rec.Path, modTime(rec, cls), rd)
	p.metrics.ProxyBytes(rc.repo.Name, "served", cw.n)
	return nil
}

// serveBytes serves a cached file held in memory.
func (p *Proxy) serveBytes(w http.ResponseWriter, r *http.Request, rc *repoConfig, rec *meta.ProxyFile, cls class, result string, b []byte) {
	p.setHeaders(w.Header(), rc, rec, cls, result)
	if plainGet(r) {
		// The common case, every client of a fleet asking for a pointer
		// file: headers and body in one write, without ServeContent's
		// copy buffer.
		p.writeBytes(w, r, b, modTime(rec, cls))
		if r.Method != http.MethodHead {
			p.metrics.ProxyBytes(rc.repo.Name, "served", int64(len(b)))
		}
		return
	}
	// Without ReadFrom: headers and body leave in one write.
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(struct{ http.ResponseWriter }{cw}, r, rec.Path, modTime(rec, cls), bytes.NewReader(b))
	p.metrics.ProxyBytes(rc.repo.Name, "served", cw.n)
}

// setHeaders sets the headers of a cached file's response, and counts it.
func (p *Proxy) setHeaders(h http.Header, rc *repoConfig, rec *meta.ProxyFile, cls class, result string) {
	p.eachHeader(rc, rec, cls, result, func(k string, v []string) { h[k] = v })
}

// eachHeader passes set the headers of a cached file's response (values
// interned: set may keep them), and counts the response.
func (p *Proxy) eachHeader(rc *repoConfig, rec *meta.ProxyFile, cls class, result string, set func(k string, v []string)) {
	// Recorded before the bytes go out: a long download is recent use.
	p.used(rc, rec)
	set("Etag", p.hdr.etag(rec.Digest))
	// By the path, never as an upstream said (records of older versions
	// kept the upstream's): an upstream must not make packyard's origin
	// serve HTML.
	set("Content-Type", p.hdr.get(contentTypeOf(rec.Path)))
	set("X-Content-Type-Options", p.hdr.get("nosniff"))
	set("Cache-Control", p.hdr.get(cls.cacheControl(rc)))
	set(canonicalHeaderCache, p.hdr.get(result))
	p.metrics.ProxyRequest(rc.repo.Name, result)
}

// canonicalHeaderCache is HeaderCache as a key of http.Header.
var canonicalHeaderCache = http.CanonicalHeaderKey(HeaderCache)

// ServeFast answers req, a GET (or HEAD) of path, into resp as Serve
// would, if it can from memory without asking an upstream, a peer or the
// blob store: a pointer file that is fresh (in passthrough mode), or
// another cached file whose bytes are held in memory. Otherwise it returns
// false, having done nothing.
func (p *Proxy) ServeFast(repo *meta.Repo, c Config, path string, req *httpfast.Request, resp *httpfast.Response) bool {
	if CheckPath(path) != nil || strings.HasPrefix(path, upstreamPrefix) {
		return false
	}
	rc := p.repoConfig(repo, c)
	cls := classify(repo.Format, path)
	ctx := context.Background()
	var rec *meta.ProxyFile
	if cls.kind == kindPointer {
		// The case servePointer answers without a revalidation.
		fresh, seen, err := p.groupFresh(ctx, rc, cls)
		if err != nil || !fresh || rc.union || seen == nil || seen.Path != path {
			return false
		}
		rec = seen
	} else {
		if cls.byHash != "" {
			// Served by digest, usually without a record of its own: a
			// lookup here would only be repeated by Serve.
			return false
		}
		var err error
		if rec, err = p.meta.GetProxyFile(ctx, repo.ID, path); err != nil {
			return false
		}
	}
	if !p.small.Fits(rec.Size) {
		return false
	}
	mod := modTime(rec, cls)
	if hasModTime(mod) && req.IfModifiedSince {
		return false // ServeContent decides: perhaps a 304
	}
	b, ok := p.small.Hit(rec.Digest)
	if !ok {
		return false
	}
	p.eachHeader(rc, rec, cls, "hit", func(k string, v []string) { resp.Header(k, v[0]) })
	resp.Header("Accept-Ranges", "bytes")
	if hasModTime(mod) {
		resp.Header("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	resp.Body(b)
	if !req.Head {
		p.metrics.ProxyBytes(rc.repo.Name, "served", int64(len(b)))
	}
	return true
}

// modTime is the Last-Modified of a cached file: when it was fetched for
// content-addressed files, none for pointer files (their ETag decides).
func modTime(rec *meta.ProxyFile, cls class) time.Time {
	if cls.kind == kindImmutable {
		return rec.FetchedAt
	}
	return time.Time{}
}

// hasModTime reports whether mod is sent as Last-Modified (as
// ServeContent decides).
func hasModTime(mod time.Time) bool { return !mod.IsZero() && !mod.Equal(time.Unix(0, 0)) }

// plainGet reports whether a request is a GET or HEAD with no range and
// no precondition: ServeContent would answer it 200 with the whole body.
func plainGet(r *http.Request) bool {
	h := r.Header
	return h.Get("Range") == "" && h.Get("If-None-Match") == "" && h.Get("If-Modified-Since") == "" &&
		h.Get("If-Match") == "" && h.Get("If-Unmodified-Since") == "" && h.Get("If-Range") == ""
}

// writeBytes answers a plainGet with the whole of br, as ServeContent
// would (Last-Modified, Accept-Ranges, Content-Length), in one write.
func (p *Proxy) writeBytes(w http.ResponseWriter, r *http.Request, b []byte, mod time.Time) {
	h := w.Header()
	if hasModTime(mod) {
		h.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	p.hdr.set(h, "Accept-Ranges", "bytes")
	h["Content-Length"] = p.hdr.length(int64(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// ReadFrom forwards to the underlying writer's ReadFrom, so that a cached
// file is sent with sendfile.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
