package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// The origin's side of edge replication (packyard agent): the full file
// list of a generation, the edges' heartbeats, and their lag.

// genFileJSON is one file of a generation as an edge copies it.
type genFileJSON struct {
	Path        string `json:"path"`
	Digest      string `json:"digest"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	// Parts are the blobs whose concatenation the file is (fetch each by
	// digest); empty when the file is the blob Digest.
	Parts []string `json:"parts,omitempty"`
	// Data holds the bytes of a small file that is no blob (a pacman
	// package signature kept with the package's record).
	Data []byte `json:"data,omitempty"`
	// Pointer is true for files whose content changes under their path
	// (repomd.xml, InRelease, NAME.db): a replica switches them last.
	Pointer bool `json:"pointer,omitempty"`
}

// generationFilesJSON answers GET /api/v1/repos/{repo}/generations/{n}/files.
type generationFilesJSON struct {
	Repo       string    `json:"repo"`
	Format     string    `json:"format"`
	Generation int64     `json:"generation"`
	Seq        int64     `json:"seq"`
	Current    bool      `json:"current"`
	CreatedAt  time.Time `json:"created_at"`
	// FeedSeq is the change feed's last sequence number when the answer
	// was made, read before the generation: a follower that starts from
	// it misses no later publish.
	FeedSeq int64         `json:"feed_seq"`
	Files   []genFileJSON `json:"files"`
	// Since is set when the answer is the difference from that generation
	// (?since=M): Files then holds only the files added or changed since
	// it, and Removed the paths it served that this one does not.
	Since   int64    `json:"since,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// genCache keeps the file lists of the generations asked for last: a
// generation never changes, and every edge asks for the same one right
// after a publish (and for the one it serves, to compute a difference);
// concurrent askers share one computation. It is bounded by the number of
// lists and of files it holds, the least recently used going first.
type genCache struct {
	group singleflight.Group
	mu    sync.Mutex
	keys  []string // least recently used first
	lists map[string][]genFileJSON
	files int // in lists
}

// Bounds of the cache: a few hundred bytes a file, so about 100 MiB at
// most; a publish burst over many repositories, each asked for the new
// generation and the previous one, fits.
const (
	genCacheLists = 64
	genCacheFiles = 1 << 18
)

func (c *genCache) get(key string, build func() ([]genFileJSON, error)) ([]genFileJSON, error) {
	c.mu.Lock()
	if l, ok := c.lists[key]; ok {
		c.touch(key)
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()
	v, err, _ := c.group.Do(key, func() (any, error) {
		l, err := build()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.add(key, l)
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]genFileJSON), nil
}

// touch makes key the most recently used. c.mu is held.
func (c *genCache) touch(key string) {
	if i := slices.Index(c.keys, key); i >= 0 {
		c.keys = append(slices.Delete(c.keys, i, i+1), key)
	}
}

// add keeps l under key and evicts the least recently used lists beyond
// the bounds (a list larger than them all is not kept). c.mu is held.
func (c *genCache) add(key string, l []genFileJSON) {
	if c.lists == nil {
		c.lists = map[string][]genFileJSON{}
	}
	if _, ok := c.lists[key]; ok || len(l) > genCacheFiles {
		return
	}
	c.keys = append(c.keys, key)
	c.lists[key] = l
	c.files += len(l)
	for len(c.keys) > genCacheLists || c.files > genCacheFiles {
		c.files -= len(c.lists[c.keys[0]])
		delete(c.lists, c.keys[0])
		c.keys = c.keys[1:]
	}
}

// generationFiles returns the handler of GET
// /api/v1/repos/{repo}/generations/{n}/files, with its cache.
func (s *Server) generationFiles() http.HandlerFunc {
	c := &genCache{}
	return func(w http.ResponseWriter, r *http.Request) { s.serveGenerationFiles(w, r, c) }
}

// serveGenerationFiles lists every file a generation serves: its index
// files, its packages, and what the format serves beside them (signatures,
// aliases), each with its digest and size.
func (s *Server) serveGenerationFiles(w http.ResponseWriter, r *http.Request, c *genCache) {
	ctx := r.Context()
	feedSeq, err := s.svc.Meta().LastSeq(ctx)
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	rp, err := s.svc.GetRepo(ctx, r.PathValue("repo"))
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	n := rp.CurrentGeneration
	if v := r.PathValue("n"); v != "current" {
		n, err = strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.edgeError(w, r, fmt.Errorf("%w: generation %q is neither a number nor \"current\"", errBadRequest, v))
			return
		}
	}
	if n == 0 {
		s.edgeError(w, r, fmt.Errorf("%w: repository %s has published no generation yet", errNotFound, rp.Name))
		return
	}
	g, err := s.svc.Meta().GetGeneration(ctx, rp.ID, n)
	if errors.Is(err, meta.ErrNotFound) {
		s.edgeError(w, r, fmt.Errorf("%w: repository %s has no generation %d (pruned, or not yet published)", errNotFound, rp.Name, n))
		return
	}
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	var since *meta.Generation
	if v := r.URL.Query().Get("since"); v != "" {
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil || m <= 0 || m > n {
			s.edgeError(w, r, fmt.Errorf("%w: since=%q is not a generation before %d", errBadRequest, v, n))
			return
		}
		since, err = s.svc.Meta().GetGeneration(ctx, rp.ID, m)
		if errors.Is(err, meta.ErrNotFound) {
			s.edgeError(w, r, fmt.Errorf("%w: repository %s no longer has generation %d: ask for the whole list", errNotFound, rp.Name, m))
			return
		}
		if err != nil {
			s.edgeError(w, r, err)
			return
		}
	}
	files, err := s.cachedList(ctx, c, rp, g)
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	out := generationFilesJSON{Repo: rp.Name, Format: rp.Format, Generation: g.Number, Seq: g.Seq,
		Current: g.Number == rp.CurrentGeneration, CreatedAt: g.CreatedAt, FeedSeq: feedSeq, Files: files}
	if since != nil {
		old, err := s.cachedList(ctx, c, rp, since)
		if err != nil {
			s.edgeError(w, r, err)
			return
		}
		out.Since = since.Number
		out.Files, out.Removed = diffLists(old, files)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) cachedList(ctx context.Context, c *genCache, rp *meta.Repo, g *meta.Generation) ([]genFileJSON, error) {
	// Keyed by repository ID: a repository deleted and created again under
	// its name starts its generations anew.
	return c.get(fmt.Sprintf("%d/%d", rp.ID, g.Number), func() ([]genFileJSON, error) {
		// Detached: one edge giving up must not fail the others waiting.
		return s.listGeneration(context.WithoutCancel(ctx), rp, g)
	})
}

// diffLists returns the files of cur that old lacks or has otherwise, and
// the paths of old that cur lacks.
func diffLists(old, cur []genFileJSON) (changed []genFileJSON, removed []string) {
	before := make(map[string]*genFileJSON, len(old))
	for i := range old {
		before[old[i].Path] = &old[i]
	}
	changed = []genFileJSON{}
	for _, f := range cur {
		o := before[f.Path]
		if o == nil || o.Digest != f.Digest || o.Size != f.Size || o.Pointer != f.Pointer ||
			!slices.Equal(o.Parts, f.Parts) || !bytes.Equal(o.Data, f.Data) || o.ContentType != f.ContentType {
			changed = append(changed, f)
		}
		delete(before, f.Path)
	}
	for p := range before {
		removed = append(removed, p)
	}
	sort.Strings(removed)
	return changed, removed
}

// sidecarSuffixes are the suffixes under which a format may serve a file
// derived from a package beside it (format.Sidecars).
var sidecarSuffixes = []string{".sig"}

func (s *Server) listGeneration(ctx context.Context, rp *meta.Repo, g *meta.Generation) ([]genFileJSON, error) {
	seen := map[string]bool{}
	var out []genFileJSON
	add := func(f genFileJSON) {
		if !seen[f.Path] {
			seen[f.Path] = true
			out = append(out, f)
		}
	}
	dirs := map[string]bool{}
	for _, f := range g.Files {
		add(genFileJSON{Path: f.Path, Digest: f.Digest, Size: f.Size, ContentType: f.ContentType, Parts: f.Parts,
			Pointer: !strings.Contains(f.Path, f.Digest) && !strings.Contains(f.Path, "/by-hash/")})
		if d, _, ok := strings.Cut(f.Path, "/"); ok {
			dirs[d] = true
		}
	}
	fm, _ := s.svc.Format(rp.Format)
	sc, _ := fm.(format.Sidecars)
	al, _ := fm.(format.PackageAliaser)
	err := s.svc.Meta().LivePackages(ctx, rp.ID, g.Seq, func(p *meta.Package) error {
		paths := []string{p.Path}
		if al != nil {
			// Directories other than the package's own that serve it
			// too (pacman's "any" packages in every architecture's).
			base := path.Base(p.Path)
			for d := range dirs {
				if q := d + "/" + base; q != p.Path {
					if to, ok := al.PackageAlias(q); ok && to == p.Path {
						paths = append(paths, q)
					}
				}
			}
		}
		for _, q := range paths {
			add(genFileJSON{Path: q, Digest: p.Digest, Size: p.Size, ContentType: contentTypeOf(q)})
			if sc == nil {
				continue
			}
			for _, suf := range sidecarSuffixes {
				pkgPath, kind, ok := sc.Sidecar(q + suf)
				if !ok || (pkgPath != q && pkgPath != p.Path) || len(p.Fragments[kind]) == 0 {
					continue
				}
				data := p.Fragments[kind]
				add(genFileJSON{Path: q + suf, Digest: hexSHA256(data), Size: int64(len(data)),
					ContentType: contentTypeOf(q + suf), Data: data})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packages of %s generation %d: %w", rp.Name, g.Number, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// heartbeatRequest is what an edge reports.
type heartbeatRequest struct {
	Version   string           `json:"version"`
	Repos     map[string]int64 `json:"repos"`
	LastSync  *time.Time       `json:"last_sync"`
	LastError string           `json:"last_error"`
}

// Bounds of a heartbeat: an edge token must not be able to fill the store,
// or /metrics with labels, with names of its own invention.
const (
	maxHeartbeatBody  = 1 << 20
	maxHeartbeatRepos = 10000
)

// knownRepos returns the positions of reported that name repositories of
// this origin; any other name is ignored.
func (s *Server) knownRepos(ctx context.Context, reported map[string]int64) (map[string]int64, error) {
	out := make(map[string]int64, len(reported))
	if len(reported) == 0 {
		return out, nil
	}
	all, err := s.svc.Meta().ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	for _, rp := range all {
		if n, ok := reported[rp.Name]; ok {
			out[rp.Name] = n
		}
	}
	return out, nil
}

// edgeNameRE is what an edge name may be (a token name in practice).
var edgeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// edgeHeartbeat records an edge's report. An edge token reports only under
// its own name; an admin token under any.
func (s *Server) edgeHeartbeat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := principal(r)
	switch {
	case p == nil:
		s.edgeError(w, r, errUnauthorized)
		return
	case !p.HasScope(meta.ScopeEdge):
		s.edgeError(w, r, forbidden(p, meta.ScopeEdge, ""))
		return
	case p.Scope != meta.ScopeAdmin && p.Name != name:
		s.edgeError(w, r, errors.Join(errForbidden, fmt.Errorf("token %s may report only as edge %q, not %q", p.Name, p.Name, name)))
		return
	}
	if !edgeNameRE.MatchString(name) {
		s.edgeError(w, r, fmt.Errorf("%w: edge name %q: use letters, digits and . _ @ - (at most 128)", errBadRequest, name))
		return
	}
	var req heartbeatRequest
	if _, err := decodeBody(r, maxHeartbeatBody, &req); err != nil {
		s.edgeError(w, r, err)
		return
	}
	if len(req.Repos) > maxHeartbeatRepos || len(req.Version) > 200 {
		s.edgeError(w, r, fmt.Errorf("%w: heartbeat too large (at most %d repositories)", errBadRequest, maxHeartbeatRepos))
		return
	}
	for repoName, n := range req.Repos {
		if repoName == "" || n < 0 {
			s.edgeError(w, r, fmt.Errorf("%w: repos: %q: %d is not a generation", errBadRequest, repoName, n))
			return
		}
	}
	repos, err := s.knownRepos(r.Context(), req.Repos)
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	req.Repos = repos
	if len(req.LastError) > 4096 {
		req.LastError = req.LastError[:4096]
	}
	e := &meta.Edge{Name: name, Version: req.Version, Repos: req.Repos, LastSeen: time.Now().UTC(),
		Address: r.RemoteAddr, LastError: req.LastError}
	if req.LastSync != nil {
		e.LastSync = req.LastSync.UTC()
	}
	if err := s.svc.Meta().PutEdge(r.Context(), e); err != nil {
		s.edgeError(w, r, err)
		return
	}
	st, err := s.edgeStatuses(r.Context(), []meta.Edge{*e})
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st[0])
}

// edgeJSON is an edge with its lag.
type edgeJSON struct {
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Address   string     `json:"address"`
	LastSeen  time.Time  `json:"last_seen"`
	LastSync  *time.Time `json:"last_sync,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// SecondsSinceHeartbeat is how long ago the edge last reported.
	SecondsSinceHeartbeat float64 `json:"seconds_since_heartbeat"`
	// Repos is the edge's position in each repository it follows.
	Repos map[string]edgeRepoJSON `json:"repos"`
}

// edgeRepoJSON is an edge's position in one repository.
type edgeRepoJSON struct {
	// Generation is the generation the edge serves, Current the origin's.
	Generation int64 `json:"generation"`
	Current    int64 `json:"current"`
	// LagGenerations is Current - Generation (0 when not behind).
	LagGenerations int64 `json:"lag_generations"`
	// LagSeconds is how long ago the oldest generation the edge lacks was
	// published (0 when not behind).
	LagSeconds float64 `json:"lag_seconds"`
	// Missing is true when the origin no longer has the repository.
	Missing bool `json:"missing,omitempty"`
}

func (s *Server) listEdges(w http.ResponseWriter, r *http.Request) {
	edges, err := s.svc.Meta().ListEdges(r.Context())
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	out, err := s.edgeStatuses(r.Context(), edges)
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteEdge(w http.ResponseWriter, r *http.Request) {
	err := s.svc.Meta().DeleteEdge(r.Context(), r.PathValue("name"))
	if errors.Is(err, meta.ErrNotFound) {
		err = fmt.Errorf("%w: no edge %q has reported", errNotFound, r.PathValue("name"))
	}
	if err != nil {
		s.edgeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// edgeStatuses computes each edge's lag against the repositories' current
// generations.
func (s *Server) edgeStatuses(ctx context.Context, edges []meta.Edge) ([]edgeJSON, error) {
	now := time.Now()
	type repoState struct {
		repo *meta.Repo
		gens []meta.Generation // newest first; loaded when an edge lags
	}
	repos := map[string]*repoState{}
	out := make([]edgeJSON, 0, len(edges))
	for _, e := range edges {
		ej := edgeJSON{Name: e.Name, Version: e.Version, Address: e.Address, LastSeen: e.LastSeen, LastError: e.LastError,
			SecondsSinceHeartbeat: now.Sub(e.LastSeen).Seconds(), Repos: map[string]edgeRepoJSON{}}
		if !e.LastSync.IsZero() {
			ls := e.LastSync
			ej.LastSync = &ls
		}
		for name, served := range e.Repos {
			rs := repos[name]
			if rs == nil {
				rs = &repoState{}
				rp, err := s.svc.Meta().GetRepo(ctx, name)
				if err != nil && !errors.Is(err, meta.ErrNotFound) {
					return nil, err
				}
				rs.repo = rp
				repos[name] = rs
			}
			if rs.repo == nil {
				ej.Repos[name] = edgeRepoJSON{Generation: served, Missing: true}
				continue
			}
			er := edgeRepoJSON{Generation: served, Current: rs.repo.CurrentGeneration}
			if served < er.Current {
				er.LagGenerations = er.Current - served
				if rs.gens == nil {
					gens, err := s.svc.Meta().ListGenerations(ctx, rs.repo.ID)
					if err != nil {
						return nil, err
					}
					rs.gens = gens
				}
				// The oldest retained generation the edge lacks.
				for _, g := range rs.gens {
					if g.Number > served {
						er.LagSeconds = max(0, now.Sub(g.CreatedAt).Seconds())
					}
				}
			}
			ej.Repos[name] = er
		}
		out = append(out, ej)
	}
	return out, nil
}

// edgeCollector exports every edge's lag to /metrics, read from the store
// at scrape time so that every origin node reports every edge.
type edgeCollector struct{ s *Server }

var (
	edgeLagGenerations = prometheus.NewDesc("packyard_edge_lag_generations",
		"Generations an edge is behind the origin, per repository.", []string{"edge", "repo"}, nil)
	edgeLagSeconds = prometheus.NewDesc("packyard_edge_lag_seconds",
		"Seconds since the oldest generation an edge lacks was published, per repository (0: up to date).", []string{"edge", "repo"}, nil)
	edgeGeneration = prometheus.NewDesc("packyard_edge_generation",
		"Generation an edge serves, per repository.", []string{"edge", "repo"}, nil)
	edgeHeartbeatAge = prometheus.NewDesc("packyard_edge_heartbeat_age_seconds",
		"Seconds since an edge last reported.", []string{"edge"}, nil)
	edgeErrorDesc = prometheus.NewDesc("packyard_edge_error",
		"1 when an edge's last report carried a sync error.", []string{"edge"}, nil)
)

func (c edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{edgeLagGenerations, edgeLagSeconds, edgeGeneration, edgeHeartbeatAge, edgeErrorDesc} {
		ch <- d
	}
}

func (c edgeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	edges, err := c.s.svc.Meta().ListEdges(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(edgeLagGenerations, err)
		return
	}
	st, err := c.s.edgeStatuses(ctx, edges)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(edgeLagGenerations, err)
		return
	}
	for _, e := range st {
		ch <- prometheus.MustNewConstMetric(edgeHeartbeatAge, prometheus.GaugeValue, e.SecondsSinceHeartbeat, e.Name)
		failing := 0.0
		if e.LastError != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(edgeErrorDesc, prometheus.GaugeValue, failing, e.Name)
		for repoName, er := range e.Repos {
			ch <- prometheus.MustNewConstMetric(edgeGeneration, prometheus.GaugeValue, float64(er.Generation), e.Name, repoName)
			ch <- prometheus.MustNewConstMetric(edgeLagGenerations, prometheus.GaugeValue, float64(er.LagGenerations), e.Name, repoName)
			ch <- prometheus.MustNewConstMetric(edgeLagSeconds, prometheus.GaugeValue, er.LagSeconds, e.Name, repoName)
		}
	}
}

// registerEdgeMetrics adds the edges' gauges to the server's registry.
// Several servers may share one Metrics (tests): the first one's store is
// the one reported.
func (s *Server) registerEdgeMetrics() {
	_ = s.metrics.reg.Register(edgeCollector{s})
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// edgeError answers with err unless the client has gone: an edge that is
// stopped in the middle of a request is no server error.
func (s *Server) edgeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	s.writeError(w, r, err)
}
