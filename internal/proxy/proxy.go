// Package proxy serves proxy repositories: a pull-through cache of one or
// more upstream repositories (tried in order) and of peer packyard nodes.
//
// Files fall into three classes (classify):
//
//   - pointer files (repodata/repomd.xml and its .asc/.key; APT
//     dists/DIST/InRelease, Release, Release.gpg; pacman NAME.db, NAME.files
//     and their .sig) are revalidated with a conditional GET once they are
//     older than the repository's max_age. A pointer is fetched as a group
//     with its companions and with every index file it names, each checked
//     against the digest the pointer gives, and the group is recorded in one
//     transaction: a client never gets a pointer whose files the cache
//     cannot serve.
//   - index files at fixed paths (APT Packages files) follow their pointer.
//   - everything else (packages, hashed index files, by-hash files) never
//     changes under its path and is cached forever.
//
// Each missing file is downloaded once however many clients ask at once
// (see flight): the first request starts the download, the others read the
// spooled bytes as they arrive, and the file enters the cache only after its
// size and its digest (from the upstream index, where one names it) check
// out. A failed download aborts every client's connection and caches
// nothing. When no upstream answers, cached files are served (stale ones
// marked X-Packyard-Cache: stale) and missing ones fail with 502 or 504.
//
// Cached bytes are blobs of the blob store; the path → digest records are
// meta.ProxyFile rows.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/bytecache"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Errors Serve returns before it has written anything; the HTTP layer maps
// them to statuses.
var (
	// ErrNotFound means no upstream has the file (404), or a cache-only
	// request asked for a file that is not cached.
	ErrNotFound = errors.New("not found")
	// ErrBadGateway means the file is not cached and no upstream delivered
	// it (502).
	ErrBadGateway = errors.New("upstream failed")
	// ErrGatewayTimeout means the file is not cached and the upstreams did
	// not answer in time (504).
	ErrGatewayTimeout = errors.New("upstream timed out")
)

// Metrics receives a proxy's observations.
type Metrics interface {
	// ProxyRequest records how a request was answered: hit, miss,
	// coalesced (joined a download in flight), revalidated, stale,
	// not_found or error.
	ProxyRequest(repo, result string)
	// ProxyBytes counts bytes received from "upstream" or "peer", or
	// "served" to clients.
	ProxyBytes(repo, kind string, n int64)
	// ProxyUpstreamError counts a failed request to an upstream.
	ProxyUpstreamError(repo, upstream string)
}

type nopMetrics struct{}

func (nopMetrics) ProxyRequest(string, string)       {}
func (nopMetrics) ProxyBytes(string, string, int64)  {}
func (nopMetrics) ProxyUpstreamError(string, string) {}

// Store is the part of the metadata store a proxy uses (meta.Store has
// it).
type Store interface {
	meta.ProxyStore
	// DigestReferenced reports whether anything still names a blob, before
	// an evicted file's blob is deleted.
	DigestReferenced(ctx context.Context, digest string) (bool, error)
}

// Options configure a Proxy.
type Options struct {
	// Blobs holds the cached bytes; Meta the path → digest records.
	Blobs blob.Store
	Meta  Store
	Log   *slog.Logger
	// Metrics receives observations; nil discards them.
	Metrics Metrics
	// TempDir holds the spool files of downloads in flight ("" for the
	// system's).
	TempDir string
	// MaxFileSize bounds one downloaded file (0: 8 GiB).
	MaxFileSize int64
	// Transport makes upstream requests (nil: a default transport).
	Transport http.RoundTripper
	// Formats parse cached packages into index entries (union mode), by
	// format name.
	Formats map[string]format.Format
	// Signer returns the signer and armored public keys of a repository
	// (union mode signs its merged metadata).
	Signer func(r *meta.Repo) (format.Signer, []byte, error)
	// Now returns the current time (tests may fix it).
	Now func() time.Time
	// RecordTTL is how long a record looked up in Meta is reused without
	// asking Meta again (default one second; negative: never). Writes
	// through the Proxy forget them at once; it bounds how late a write
	// by another node sharing the database is seen.
	RecordTTL time.Duration
}

// Proxy serves every proxy repository of a server.
type Proxy struct {
	blobs   blob.Store
	meta    Store
	log     *slog.Logger
	metrics Metrics
	tmp     string
	maxFile int64
	client  *http.Client
	now     func() time.Time
	formats map[string]format.Format
	signer  func(r *meta.Repo) (format.Signer, []byte, error)
	// archSigs remembers package signatures read from an upstream pacman
	// database (union mode).
	archSigs archSigs

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	flights map[string]*flight
	groups  map[string]*groupCall
	indexes map[int64]*expectedIndex
	sizes   map[int64]*cacheSize
	// down remembers failing sources, by base URL (see backoff).
	down map[string]downState
	// reading counts the responses reading each blob, which eviction
	// leaves alone.
	reading map[string]int

	// small holds the bytes of small cached files (smallFileMax).
	small *bytecache.Cache

	// hdr interns response header values.
	hdr headerValues

	// rcs caches each repository record's configuration.
	rcMu sync.RWMutex
	rcs  map[*meta.Repo]rcEntry
}

// The bytes of cached files up to smallFileMax are kept in memory, up to
// smallCacheSize in all.
const (
	smallFileMax   = 64 << 10
	smallCacheSize = 32 << 20
)

// New returns a Proxy; Close stops its downloads.
func New(opts Options) *Proxy {
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 8 << 30
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			DisableCompression:  true,
		}
	}
	var ms Store = opts.Meta
	switch {
	case opts.RecordTTL == 0:
		ms = newMemoStore(opts.Meta, time.Second, time.Now)
	case opts.RecordTTL > 0:
		ms = newMemoStore(opts.Meta, opts.RecordTTL, time.Now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		blobs: opts.Blobs, meta: ms, log: opts.Log, metrics: opts.Metrics, tmp: opts.TempDir,
		maxFile: opts.MaxFileSize, now: opts.Now, formats: opts.Formats, signer: opts.Signer,
		// Redirects are followed within the repository's origins only
		// (checkRedirect); timeouts are per request (see request).
		client: &http.Client{Transport: tr, CheckRedirect: checkRedirect},
		ctx:    ctx, cancel: cancel,
		flights: map[string]*flight{}, groups: map[string]*groupCall{}, indexes: map[int64]*expectedIndex{}, sizes: map[int64]*cacheSize{},
		down: map[string]downState{}, reading: map[string]int{},
		small: bytecache.New(smallCacheSize, smallFileMax),
	}
}

// Close cancels the downloads in flight.
func (p *Proxy) Close() { p.cancel() }

// Config is a proxy repository's configuration.
type Config struct {
	// Upstreams and Peers are base URLs; peers are packyard nodes serving
	// a repository of the same name.
	Upstreams []string
	Peers     []string
	// MaxAge is how long a pointer file is served before it is
	// revalidated (default 5 minutes).
	MaxAge time.Duration
	// Timeout bounds the wait for an upstream's response headers and each
	// pause in a body (default 30 seconds).
	Timeout time.Duration
	// Union serves the upstream's metadata merged with every package the
	// cache ever stored, signed with the repository's keys.
	Union bool
	// MaxSize caps the bytes of cached package files (0: no cap); past it
	// the least recently served are evicted.
	MaxSize int64
}

// repoConfig is a repository with its parsed configuration.
type repoConfig struct {
	repo      *meta.Repo
	upstreams []source
	peers     []source
	maxAge    time.Duration
	timeout   time.Duration
	union     bool
	maxSize   int64
}

// upstreamPrefix prefixes the records of a union repository's upstream
// pointer files: the paths themselves serve the merged metadata.
const upstreamPrefix = "~upstream/"

// recPath is where the record of a pointer group member is kept.
func (rc *repoConfig) recPath(member string) string {
	if rc.union {
		return upstreamPrefix + member
	}
	return member
}

// indexRecPath is where the record of an index file a pointer names is
// kept: a union deb repository serves its own Packages at the upstream's
// paths (rpm index files have names of their own).
func (rc *repoConfig) indexRecPath(p string) string {
	if rc.union && rc.repo.Format == meta.FormatDeb {
		return upstreamPrefix + p
	}
	return p
}

func newRepoConfig(r *meta.Repo, c Config) *repoConfig {
	rc := &repoConfig{repo: r, maxAge: c.MaxAge, timeout: c.Timeout, union: c.Union, maxSize: c.MaxSize}
	if rc.maxAge <= 0 {
		rc.maxAge = 5 * time.Minute
	}
	if rc.timeout <= 0 {
		rc.timeout = 30 * time.Second
	}
	for _, u := range c.Upstreams {
		rc.upstreams = append(rc.upstreams, source{base: strings.TrimSuffix(u, "/") + "/"})
	}
	for _, u := range c.Peers {
		rc.peers = append(rc.peers, source{base: strings.TrimSuffix(u, "/") + "/" + url.PathEscape(r.Name) + "/", peer: true})
	}
	return rc
}

// repoConfig returns the repository's configuration, built once per
// repository record and Config (the read path hands the same *meta.Repo
// until the repository's settings change).
func (p *Proxy) repoConfig(r *meta.Repo, c Config) *repoConfig {
	p.rcMu.RLock()
	e, ok := p.rcs[r]
	p.rcMu.RUnlock()
	if ok && e.cfg.equal(c) {
		return e.rc
	}
	rc := newRepoConfig(r, c)
	p.rcMu.Lock()
	if p.rcs == nil || len(p.rcs) > 1024 {
		p.rcs = map[*meta.Repo]rcEntry{}
	}
	p.rcs[r] = rcEntry{cfg: c, rc: rc}
	p.rcMu.Unlock()
	return rc
}

type rcEntry struct {
	cfg Config
	rc  *repoConfig
}

func (c Config) equal(o Config) bool {
	return c.MaxAge == o.MaxAge && c.Timeout == o.Timeout && c.Union == o.Union && c.MaxSize == o.MaxSize &&
		slices.Equal(c.Upstreams, o.Upstreams) && slices.Equal(c.Peers, o.Peers)
}

// sources lists where to look for a file, in order.
func (rc *repoConfig) sources(peers bool) []source {
	if !peers {
		return rc.upstreams
	}
	return append(append([]source(nil), rc.peers...), rc.upstreams...)
}

// Serve answers GET or HEAD of path (clean, relative to the repository
// root) in a proxy repository. An error is returned only when nothing has
// been written yet.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, repo *meta.Repo, c Config, path string) error {
	if err := CheckPath(path); err != nil {
		return err
	}
	rc := p.repoConfig(repo, c)
	if strings.HasPrefix(path, upstreamPrefix) {
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	cacheOnly := r.Header.Get(HeaderCacheOnly) != ""
	cls := classify(repo.Format, path)
	if cls.kind == kindPointer {
		return p.servePointer(w, r, rc, cls, path, cacheOnly)
	}
	ctx := r.Context()
	rec, err := p.meta.GetProxyFile(ctx, repo.ID, path)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	if rec != nil {
		if err := p.serveRecord(w, r, rc, rec, cls, "hit"); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		// The blob went missing (restored backup, manual deletion):
		// fetch it again.
		p.log.Warn("cached blob missing, fetching again", "repo", repo.Name, "path", path, "digest", rec.Digest)
	}
	if cls.byHash != "" {
		// A by-hash file is named by its digest: any cached blob with
		// that digest is it.
		if info, err := p.blobs.Stat(ctx, blob.Digest(cls.byHash)); err == nil {
			rec := &meta.ProxyFile{RepoID: repo.ID, Path: path, Digest: string(info.Digest), Size: info.Size,
				ContentType: contentTypeOf(path), Source: "by-hash", FetchedAt: p.now()}
			return p.serveRecord(w, r, rc, rec, cls, "hit")
		}
	}
	if cacheOnly {
		p.metrics.ProxyRequest(repo.Name, "not_found")
		return fmt.Errorf("%w: %s is not cached here (cache-only request)", ErrNotFound, path)
	}
	want, wantSize := cls.byHash, int64(-1)
	if want == "" {
		want, wantSize = p.expected(ctx, rc, path)
	}
	return p.serveFlight(w, r, rc, fetchSpec{path: path, want: want, wantSize: wantSize, peers: true, record: true}, cls)
}

// serveFlight joins or starts the download of spec.path and streams it.
func (p *Proxy) serveFlight(w http.ResponseWriter, r *http.Request, rc *repoConfig, spec fetchSpec, cls class) error {
	fl, leader, err := p.flightFor(rc, spec)
	if err != nil {
		return err
	}
	defer fl.leave()
	result := "coalesced"
	if leader {
		result = "miss"
	}
	hdr := http.Header{HeaderCache: {result}, "Cache-Control": {cls.cacheControl(rc)}}
	n, err := fl.stream(r.Context(), w, r, hdr)
	p.metrics.ProxyBytes(rc.repo.Name, "served", n)
	if err != nil {
		// Before the headers: the caller answers with an error status.
		p.metrics.ProxyRequest(rc.repo.Name, "error")
		return err
	}
	p.metrics.ProxyRequest(rc.repo.Name, result)
	return nil
}

// flightFor returns the download of spec.path in flight, or starts one. The
// caller must leave it. A download that expects a digest joins only a
// flight that expects the same one (or none): a pointer group fetching the
// new version of an index must not take the old version a client's
// request is fetching, and the reverse.
func (p *Proxy) flightFor(rc *repoConfig, spec fetchSpec) (*flight, bool, error) {
	key := fmt.Sprintf("%d/%s", rc.repo.ID, spec.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if fl, ok := p.flights[key]; ok && spec.want != "" && fl.want != spec.want {
		key += "@" + spec.want
	}
	if fl, ok := p.flights[key]; ok {
		fl.join()
		return fl, false, nil
	}
	fl, err := newFlight(key, p.tmp)
	if err != nil {
		return nil, false, err
	}
	fl.want = spec.want
	p.flights[key] = fl
	fl.join() // the caller's reference; the runner holds the first
	go p.runFlight(rc, fl, spec)
	return fl, true, nil
}

// TempDirFor returns the spool directory under a data directory, creating
// it.
func TempDirFor(dataDir string) (string, error) {
	dir := dataDir + "/proxy-spool"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create proxy spool directory: %w", err)
	}
	return dir, nil
}
