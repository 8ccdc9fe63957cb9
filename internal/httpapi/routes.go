package httpapi

import (
	"net/http"
	"path"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

// routes lists every route and the scope it needs. "" is public (reads).
func (s *Server) routes() {
	m := s.mux
	const (
		public = ""
		read   = meta.ScopeRead
		write  = meta.ScopeWrite
		admin  = meta.ScopeAdmin
	)
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", s.metrics.Handler())

	m.HandleFunc("GET /api/v1/repos", s.need(public, s.listRepos))
	m.HandleFunc("POST /api/v1/repos", s.need(admin, s.createRepo))
	m.HandleFunc("GET /api/v1/repos/{repo}", s.need(public, s.showRepo))
	m.HandleFunc("PATCH /api/v1/repos/{repo}", s.need(admin, s.patchRepo))
	m.HandleFunc("DELETE /api/v1/repos/{repo}", s.need(admin, s.deleteRepo))
	m.HandleFunc("GET /api/v1/repos/{repo}/generations", s.need(public, s.listGenerations))
	m.HandleFunc("GET /api/v1/repos/{repo}/generations/{n}/files", s.need(public, s.generationFiles()))
	m.HandleFunc("GET /api/v1/repos/{repo}/packages", s.need(public, s.listPackages))
	m.HandleFunc("PUT /api/v1/repos/{repo}/packages/{filename}", s.need(write, s.uploadPackage))
	m.HandleFunc("DELETE /api/v1/repos/{repo}/packages/{id}", s.need(admin, s.deletePackage))
	m.HandleFunc("POST /api/v1/repos/{repo}/sync", s.need(write, s.startSync))
	m.HandleFunc("GET /api/v1/repos/{repo}/syncs", s.need(public, s.listSyncs))
	m.HandleFunc("GET /api/v1/repos/{repo}/syncs/{id}", s.need(public, s.getSync))
	m.HandleFunc("POST /api/v1/repos/{repo}/snapshots", s.need(admin, s.createSnapshot))
	m.HandleFunc("GET /api/v1/repos/{repo}/snapshots", s.need(public, s.listSnapshots))
	m.HandleFunc("DELETE /api/v1/repos/{repo}/snapshots/{name}", s.need(admin, s.deleteSnapshot))
	m.HandleFunc("GET /api/v1/events", s.need(public, s.events))
	m.HandleFunc("GET /api/v1/blobs/{digest}", s.need(read, s.getBlob))
	m.HandleFunc("POST /api/v1/blobs", s.need(read, s.getBlobs))
	m.HandleFunc("GET /api/v1/tokens", s.need(admin, s.listTokens))
	m.HandleFunc("POST /api/v1/tokens", s.need(admin, s.createToken))
	m.HandleFunc("DELETE /api/v1/tokens/{name}", s.need(admin, s.deleteToken))
	m.HandleFunc("GET /api/v1/whoami", s.need(public, s.whoami))
	// Edge agents: the heartbeat handler checks the edge scope and name.
	m.HandleFunc("POST /api/v1/edges/{name}/heartbeat", s.need(public, s.edgeHeartbeat))
	m.HandleFunc("GET /api/v1/edges", s.need(read, s.listEdges))
	m.HandleFunc("DELETE /api/v1/edges/{name}", s.need(admin, s.deleteEdge))
	s.registerEdgeMetrics()
	m.HandleFunc("GET /api/v1/keys", s.need(admin, s.listKeys))
	m.HandleFunc("POST /api/v1/keys", s.need(admin, s.generateKey))
	m.HandleFunc("GET /api/v1/keys/{name}", s.need(public, s.showKey))
	m.HandleFunc("GET /api/v1/keys/{name}/public", s.need(public, s.publicKey))
	m.HandleFunc("PUT /api/v1/keys/{name}", s.need(admin, s.importKey))
	m.HandleFunc("DELETE /api/v1/keys/{name}", s.need(admin, s.deleteKey))

	// WebDAV: reads are public like repository reads, writes need a token.
	m.HandleFunc("OPTIONS /dav/{repo}/{path...}", s.davOptions)
	m.HandleFunc("PROPFIND /dav/{repo}/{path...}", s.need(public, s.davPropfind))
	// Clients (Windows, davfs2) ask for a collection without its slash.
	m.HandleFunc("PROPFIND /dav/{repo}", s.need(public, s.davPropfind))
	m.HandleFunc("GET /dav/{repo}/{path...}", s.need(public, s.davGet))
	m.HandleFunc("HEAD /dav/{repo}/{path...}", s.need(public, s.davGet))
	m.HandleFunc("PUT /dav/{repo}/{path...}", s.need(write, s.davPut))
	m.HandleFunc("DELETE /dav/{repo}/{path...}", s.need(admin, s.davDelete))
	m.HandleFunc("MKCOL /dav/{repo}/{path...}", s.need(write, s.davMkcol))
	m.HandleFunc("OPTIONS /dav/", s.davOptions)
	m.HandleFunc("PROPFIND /dav/", s.need(public, s.davRoot))

	m.HandleFunc("GET /{$}", s.index)
	// A GET pattern also answers HEAD; a separate HEAD pattern here would
	// conflict with "GET /dav/{repo}/{path...}" and make ServeMux panic.
	m.HandleFunc(filePattern, s.need(public, s.serveFile))
	m.HandleFunc("GET /{repo}", s.redirectRepo)
}

// filePattern serves every file of every repository: the route package
// managers ask for, taken without ServeMux's matching when fileRoute
// recognises the request.
const filePattern = "GET /{repo}/{path...}"

// fileRoute reports whether the mux would send r to filePattern, for the
// requests that are simple to tell: GET or HEAD of a clean, unescaped
// path whose first segment is not one with routes of its own (api, dav)
// and that has more after it. Anything else goes through the mux.
func fileRoute(r *http.Request) (repo, rest string, ok bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.RawPath != "" {
		return "", "", false
	}
	return filePath(r.URL.Path)
}

// filePath splits the path of a fileRoute request.
func filePath(p string) (repo, rest string, ok bool) {
	if len(p) < 4 || p[0] != '/' {
		return "", "", false
	}
	i := strings.IndexByte(p[1:], '/') + 1 // the second slash; 0 if none
	if i <= 1 {
		return "", "", false
	}
	repo, rest = p[1:i], p[i+1:]
	if repo == "api" || repo == "dav" || rest == "" {
		return "", "", false
	}
	// ServeMux redirects unclean paths: leave those to it.
	if c := path.Clean(p); c != p && c+"/" != p {
		return "", "", false
	}
	return repo, rest, true
}
