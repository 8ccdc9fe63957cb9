// Package agent is packyard's edge replica (packyard agent): it follows an
// origin's change feed and keeps a plain directory tree byte-identical with
// the origin's repositories, for its own or any static web server to serve.
//
// Layout of root_dir (the origin's URL layout):
//
//	<root_dir>/<repo>/<path>             every file of the served generation
//	<root_dir>/<repo>/<path>             files of older generations, until the grace period ends
//	<root_dir>/.../.packyard-agent-*.tmp downloads in progress (a crash's are removed within a minute)
//
// For each new generation of a followed repository the agent downloads
// every blob it lacks, verifies its digest, places packages and other
// content-addressed files first and renames the pointer files (repomd.xml,
// InRelease, NAME.db …) over the old ones last. It never signs anything:
// the origin's signed files are copied byte for byte.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Agent is one running edge replica.
type Agent struct {
	cfg     Config
	version string
	log     *slog.Logger
	origin  *origin
	state   *state
	metrics *metrics

	events  chan event
	syncReq chan chan syncResult
	hbKick  chan struct{}

	// root is root_dir with its symbolic links resolved (by Run), keep
	// the keep_files under it; both are set before any goroutine starts.
	root string
	keep map[string]bool
	// cleanupEvery is how often expired and temporary files are deleted.
	cleanupEvery time.Duration
	// fsyncDir makes the renames into a directory durable.
	fsyncDir func(dir string) error
	// parts locates the parts of multi-part index files on disk.
	parts partIndex
	// noBatch is set once the origin has answered that it has no batch
	// downloads (an older version).
	noBatch atomic.Bool

	mu       sync.Mutex
	served   map[string]int64 // repository -> generation served
	lastErr  string
	feedErr  string // why the change feed is unavailable, "" while it works
	lastSync time.Time
	feedMode string
	addr     string
}

// Options configure New.
type Options struct {
	// Version is reported to the origin.
	Version string
	// Log receives the agent's log (default: slog.Default()).
	Log *slog.Logger
}

// New opens the agent's state and prepares it to run.
func New(ctx context.Context, cfg Config, opts Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	o, err := newOrigin(cfg.Origin, cfg.Token, cfg.Proxy)
	if err != nil {
		return nil, err
	}
	st, err := openState(ctx, cfg.StateDB)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, version: opts.Version, log: opts.Log, origin: o, state: st, metrics: newMetrics(),
		events: make(chan event, 256), syncReq: make(chan chan syncResult), hbKick: make(chan struct{}, 1),
		served: map[string]int64{}, cleanupEvery: cleanupInterval, fsyncDir: fsyncDir,
	}
	a.setRoot(filepath.Clean(cfg.RootDir))
	return a, nil
}

// setRoot makes root (root_dir, resolved) the tree the agent writes and
// rebases keep_files onto it.
func (a *Agent) setRoot(root string) {
	a.root = root
	a.keep = map[string]bool{}
	for _, k := range a.cfg.KeepFiles {
		k = filepath.Clean(k)
		if rel, err := filepath.Rel(filepath.Clean(a.cfg.RootDir), k); err == nil && within(a.cfg.RootDir, k) {
			k = filepath.Join(root, rel)
		}
		a.keep[k] = true
	}
}

// Close releases the agent's state database.
func (a *Agent) Close() error { return a.state.close() }

// Addr returns the address the built-in server listens on ("" if none).
func (a *Agent) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Run follows the origin until ctx ends. The tree keeps being served (by
// the built-in server, or any other) whatever happens to the origin.
func (a *Agent) Run(ctx context.Context) error {
	if err := mkdirRoot(a.cfg.RootDir); err != nil {
		return err
	}
	// root_dir is often a symbolic link (/srv/www -> /data/www): the tree
	// is walked and written where it really is.
	root, err := filepath.EvalSymlinks(a.cfg.RootDir)
	if err != nil {
		return fmt.Errorf("root_dir: %w", err)
	}
	a.setRoot(root)
	// The state is loaded before the server starts: /healthz reads it.
	repos, err := a.state.repos(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	a.mu.Lock()
	for name, rs := range repos {
		a.served[name] = rs.Generation
		a.metrics.generation.WithLabelValues(name).Set(float64(rs.Generation))
		if rs.SyncedAt.After(a.lastSync) {
			a.lastSync = rs.SyncedAt
		}
	}
	a.mu.Unlock()
	since, err := a.state.getInt(ctx, "last_seq")
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	a.metrics.lastSeq.Set(float64(since))
	var srv *http.Server
	addr := ""
	if a.cfg.Listen != "" {
		ln, err := net.Listen("tcp", a.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
		}
		addr = ln.Addr().String()
		a.mu.Lock()
		a.addr = addr
		a.mu.Unlock()
		srv = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("agent server failed", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	a.log.Info("packyard agent started", "origin", a.cfg.Origin, "name", a.cfg.Name, "root_dir", a.root,
		"listen", addr, "since", since, "repos", len(repos), "version", a.version)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); a.heartbeatLoop(ctx) }()

	if len(repos) == 0 {
		// A new edge, or its state_db was deleted: rebuild from the tree
		// and the origin, re-downloading only what does not verify.
		since = a.initialSync(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.follow(ctx, since) }()
	a.work(ctx, since)
	return nil
}

// initialSync runs full syncs until one succeeds and returns the feed
// position to follow from.
func (a *Agent) initialSync(ctx context.Context) int64 {
	b := newBackoff()
	for ctx.Err() == nil {
		res := a.fullSync(ctx, true)
		if res.err == nil {
			if err := a.state.setInt(ctx, "last_seq", res.feedSeq); err != nil && ctx.Err() == nil {
				a.log.Error("recording the feed position failed", "err", err)
			}
			a.metrics.lastSeq.Set(float64(res.feedSeq))
			return res.feedSeq
		}
		a.runCleanup(ctx, true)
		b.wait(ctx)
	}
	return 0
}

// work applies the feed's events, runs the scheduled and requested full
// syncs and retries failed repositories, one thing at a time.
func (a *Agent) work(ctx context.Context, since int64) {
	var fullTick <-chan time.Time
	if a.cfg.FullSyncInterval > 0 {
		t := time.NewTicker(seconds(a.cfg.FullSyncInterval))
		defer t.Stop()
		fullTick = t.C
	}
	// Expired and temporary files go on their own schedule: full syncs
	// may be off, or keep failing on one repository.
	cleanTick := time.NewTicker(a.cleanupEvery)
	defer cleanTick.Stop()
	pending := map[string]bool{} // repositories whose sync failed
	lastSeq := since
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	b := newBackoff()
	syncPending := func() {
		defer a.runCleanup(ctx, false)
		if a.syncRepos(ctx, pending) {
			b.reset()
			if err := a.state.setInt(ctx, "last_seq", lastSeq); err != nil && ctx.Err() == nil {
				a.log.Error("recording the feed position failed", "err", err)
			}
			a.metrics.lastSeq.Set(float64(lastSeq))
			a.kickHeartbeat()
			return
		}
		a.kickHeartbeat()
		retry.Reset(b.next())
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.events:
			batch := []event{ev}
		drain:
			for len(batch) < 10000 {
				select {
				case ev := <-a.events:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			for _, ev := range batch {
				lastSeq = max(lastSeq, ev.Seq)
				a.note(ctx, ev, pending)
			}
			syncPending()
		case <-retry.C:
			syncPending()
		case <-cleanTick.C:
			a.runCleanup(ctx, true)
		case <-fullTick:
			res := a.fullSync(ctx, false)
			if res.err == nil {
				clear(pending)
			}
		case reply := <-a.syncReq:
			res := a.fullSync(ctx, false)
			if res.err == nil {
				clear(pending)
			}
			reply <- res
		}
	}
}

// note records what an event asks of the agent.
func (a *Agent) note(ctx context.Context, ev event, pending map[string]bool) {
	if ev.Repo == "" || !a.follows(ev.Repo) {
		return
	}
	switch ev.Type {
	case "generation.published":
		var d struct {
			Number int64 `json:"number"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			a.log.Warn("ignoring a malformed event", "seq", ev.Seq, "err", err)
			return
		}
		a.mu.Lock()
		behind := d.Number > a.served[ev.Repo]
		a.mu.Unlock()
		if behind {
			pending[ev.Repo] = true
		}
	case "repo.deleted":
		delete(pending, ev.Repo)
		if err := a.state.forgetRepo(ctx, ev.Repo, time.Now()); err != nil {
			a.log.Error("forgetting a deleted repository failed", "repo", ev.Repo, "err", err)
			return
		}
		a.mu.Lock()
		delete(a.served, ev.Repo)
		a.mu.Unlock()
		a.metrics.generation.DeleteLabelValues(ev.Repo)
		a.log.Info("repository deleted at the origin: its files go after the grace period", "repo", ev.Repo)
	}
}

func (a *Agent) follows(repoName string) bool {
	return len(a.cfg.Repos) == 0 || slices.Contains(a.cfg.Repos, repoName)
}

// syncRepos brings each pending repository to the origin's current
// generation; it reports whether all succeeded (they leave pending).
func (a *Agent) syncRepos(ctx context.Context, pending map[string]bool) bool {
	ok := true
	for name := range pending {
		if err := a.syncRepo(ctx, name, false); err != nil {
			ok = false
			a.fail(err)
			continue
		}
		delete(pending, name)
	}
	if ok {
		a.clearErr()
	}
	return ok
}

// errNoGeneration means the origin has no generation of a repository (a
// proxy repository, or one not published yet): there is nothing to copy.
var errNoGeneration = errors.New("no generation to copy")

// syncRepo fetches the current generation's file list and applies it if
// it is newer than the served one (or always, for a full sync).
func (a *Agent) syncRepo(ctx context.Context, name string, full bool) error {
	_, _, err := a.syncRepoStats(ctx, name, full, false)
	if errors.Is(err, errNoGeneration) {
		return nil
	}
	return err
}

func (a *Agent) syncRepoStats(ctx context.Context, name string, full, rehash bool) (*genList, applyStats, error) {
	start := time.Now()
	a.mu.Lock()
	served := a.served[name]
	a.mu.Unlock()
	since := served
	if full {
		since = 0
	}
	gl, err := a.origin.generation(ctx, name, since)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil, applyStats{}, fmt.Errorf("%s: %w", name, errNoGeneration)
	}
	if err != nil {
		return nil, applyStats{}, fmt.Errorf("list %s at the origin: %w", name, err)
	}
	if gl.Generation <= served && !full {
		return gl, applyStats{}, nil
	}
	st, err := a.applyGeneration(ctx, gl, rehash)
	a.metrics.syncSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		a.metrics.syncErrors.Inc()
		return gl, st, err
	}
	now := time.Now()
	a.mu.Lock()
	a.served[name] = gl.Generation
	a.lastSync = now
	a.mu.Unlock()
	a.metrics.generation.WithLabelValues(name).Set(float64(gl.Generation))
	a.metrics.lastSync.Set(float64(now.UnixNano()) / 1e9)
	if gl.Generation != served {
		a.metrics.generations.Inc()
		a.log.Info("serving new generation", "repo", name, "generation", gl.Generation, "previous", served,
			"difference", gl.Since > 0, "files", st.Files, "downloaded", st.Downloaded, "copied", st.Copied, "bytes", st.Bytes, "took", time.Since(start).Round(time.Millisecond))
	}
	if st.Repaired > 0 {
		a.metrics.repaired.Add(float64(st.Repaired))
		a.log.Warn("repaired files that differed from the origin", "repo", name, "files", st.Repaired)
	}
	return gl, st, nil
}

// syncResult is the report of a full sync.
type syncResult struct {
	Repos      map[string]int64 `json:"repos"`
	Rehash     bool             `json:"rehash"`
	Files      int              `json:"files"`
	Downloaded int              `json:"downloaded"`
	Adopted    int              `json:"adopted"`
	Repaired   int              `json:"repaired"`
	Unmanaged  int              `json:"unmanaged_deleted"`
	Expired    int              `json:"expired_deleted"`
	Error      string           `json:"error,omitempty"`
	feedSeq    int64
	err        error
}

// fullSync compares the whole tree with the origin's current generations,
// repairs what differs and deletes what the agent does not manage. When
// rebuild, every file is hashed and unknown files of followed repositories
// are kept as an older generation's.
func (a *Agent) fullSync(ctx context.Context, rebuild bool) syncResult {
	res := syncResult{Repos: map[string]int64{}}
	pass, err := a.state.getInt(ctx, "full_passes")
	if err != nil {
		res.err = err
		return a.finishFull(res)
	}
	pass++
	res.Rehash = rebuild || pass%int64(a.cfg.RehashEvery) == 0
	names := a.cfg.Repos
	if len(names) == 0 {
		all, err := a.origin.repos(ctx)
		if err != nil {
			res.err = fmt.Errorf("full sync: list repositories at the origin: %w", err)
			return a.finishFull(res)
		}
		names = nil
		for _, r := range all {
			if r.Kind != "proxy" && validRepoName(r.Name) {
				names = append(names, r.Name)
			}
		}
	}
	res.feedSeq = math.MaxInt64
	var errs []error
	for _, name := range names {
		gl, st, err := a.syncRepoStats(ctx, name, true, res.Rehash)
		if errors.Is(err, errNoGeneration) {
			if len(a.cfg.Repos) > 0 {
				a.log.Warn("the origin has no generation of a repository in repos (does it exist?)", "repo", name)
			}
			continue
		}
		if gl != nil {
			res.feedSeq = min(res.feedSeq, gl.FeedSeq)
		}
		res.Files += st.Files
		res.Downloaded += st.Downloaded
		res.Adopted += st.Adopted
		res.Repaired += st.Repaired
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Repos[name] = gl.Generation
	}
	if res.feedSeq == math.MaxInt64 {
		res.feedSeq = 0
	}
	if len(errs) > 0 {
		res.err = errors.Join(errs...)
		return a.finishFull(res)
	}
	// Repositories served before but gone from the origin (or no longer
	// followed) leave after the grace period.
	a.mu.Lock()
	var gone []string
	for name := range a.served {
		if _, ok := res.Repos[name]; !ok {
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	for _, name := range gone {
		if err := a.state.forgetRepo(ctx, name, time.Now()); err != nil {
			res.err = err
			return a.finishFull(res)
		}
		a.mu.Lock()
		delete(a.served, name)
		a.mu.Unlock()
		a.metrics.generation.DeleteLabelValues(name)
	}
	sw, err := a.sweep(ctx, names, rebuild)
	res.Unmanaged, res.Expired = sw.Unmanaged, sw.Expired
	if err != nil {
		res.err = fmt.Errorf("full sync: %w", err)
		return a.finishFull(res)
	}
	if err := a.state.setInt(ctx, "full_passes", pass); err != nil {
		res.err = err
	}
	return a.finishFull(res)
}

func (a *Agent) finishFull(res syncResult) syncResult {
	a.metrics.fullSyncs.Inc()
	a.metrics.deleted.Add(float64(res.Unmanaged + res.Expired))
	if res.err != nil {
		res.Error = res.err.Error()
		a.metrics.syncErrors.Inc()
		a.fail(res.err)
	} else {
		a.clearErr()
		a.log.Info("full sync done", "repos", len(res.Repos), "files", res.Files, "rehash", res.Rehash,
			"downloaded", res.Downloaded, "adopted", res.Adopted, "repaired", res.Repaired,
			"unmanaged_deleted", res.Unmanaged, "expired_deleted", res.Expired)
	}
	a.kickHeartbeat()
	return res
}

// fail records and logs a sync error; the agent keeps serving what it has.
func (a *Agent) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
	a.log.Error("sync failed; serving the last complete generation", "err", err)
}

func (a *Agent) clearErr() {
	a.mu.Lock()
	a.lastErr = ""
	a.mu.Unlock()
}

// FullSync runs a full sync now (after what the agent is doing) and
// returns its report.
func (a *Agent) FullSync(ctx context.Context) (syncResult, error) {
	reply := make(chan syncResult, 1)
	select {
	case a.syncReq <- reply:
	case <-ctx.Done():
		return syncResult{}, ctx.Err()
	}
	select {
	case res := <-reply:
		return res, res.err
	case <-ctx.Done():
		return syncResult{}, ctx.Err()
	}
}

func mkdirRoot(dir string) error {
	if strings.TrimSpace(dir) == "" {
		return errors.New("root_dir is empty")
	}
	return mkdirAll(dir)
}
