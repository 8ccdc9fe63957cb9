// Package mirror copies upstream RPM, APT and pacman repositories into
// mirror repositories: it checks the upstream metadata's signature with
// the mirror's keyring, downloads every package the metadata names that
// the store lacks (checked against the signed size and sha256), records
// it, and publishes a new generation only when the whole sync succeeded.
// A union mirror keeps every package it ever copied; an exact one serves
// the upstream's metadata byte for byte (docs/mirror.md).
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// ErrNotMirror is a sync asked of a repository that is not a mirror.
var ErrNotMirror = errors.New("not a mirror repository")

// ErrBusy is a sync asked of a mirror that another node of a cluster is
// syncing.
var ErrBusy = errors.New("another node is syncing this mirror")

// Metrics receives the outcome of every sync.
type Metrics interface {
	MirrorSync(repo, status string, took time.Duration, st Stats)
}

type nopMetrics struct{}

func (nopMetrics) MirrorSync(string, string, time.Duration, Stats) {}

// Options configure a Mirror.
type Options struct {
	Repos *repo.Service
	Meta  meta.Store
	Blobs blob.Store
	// HTTP fetches from upstreams (a client with timeouts).
	HTTP    *http.Client
	Log     *slog.Logger
	Metrics Metrics
	// MaxFileSize bounds a file whose size the metadata does not give.
	MaxFileSize int64
	// Backoff is the first pause before retrying an upstream (250ms).
	Backoff time.Duration
	// Tick is how often the scheduler looks for mirrors due (30s).
	Tick time.Duration
	Now  func() time.Time
	// Exclusive says this process is the only server on its metadata
	// store (SQLite): a sync record still "running" when Run starts was
	// left by a process that stopped during the sync, and Run marks it
	// failed. On a shared store another node may be running it.
	// On a store that implements meta.SyncLocker, Run finds those records
	// by their free lock, on every pass.
	Exclusive bool
}

// Mirror runs mirror syncs, one at a time per repository.
type Mirror struct {
	opts    Options
	mu      sync.Mutex
	running map[string]*run
}

// run is a sync in progress.
type run struct {
	rec  meta.MirrorSync
	prog *Progress
	done chan struct{}
	// unlock releases the cluster-wide sync lock (nil without one).
	unlock func()
}

// atomicInt is a counter shared by a sync's workers.
type atomicInt = atomic.Int64

// Progress counts what a running sync has done so far.
type Progress struct {
	Phase string `json:"phase"`
	// Packages is how many packages the upstream metadata named so far
	// (final once Phase is "packages" and Listed is set).
	Packages atomicInt `json:"-"`
	Done     atomicInt `json:"-"`
	Bytes    atomicInt `json:"-"`
	Listed   atomic.Bool
	mu       sync.Mutex
	// since is when Phase began; spent holds the time of past phases.
	since time.Time
	spent map[string]time.Duration
}

// ProgressView is a snapshot of a Progress for the API.
type ProgressView struct {
	Phase    string `json:"phase"`
	Packages int64  `json:"packages"`
	Listed   bool   `json:"listed"`
	Done     int64  `json:"done"`
	Bytes    int64  `json:"bytes"`
}

func (p *Progress) setPhase(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == p.Phase {
		return
	}
	p.endPhase()
	p.Phase = s
}

// endPhase adds the time of the current phase to spent (p.mu held).
func (p *Progress) endPhase() {
	now := time.Now()
	if !p.since.IsZero() && p.Phase != "" {
		if p.spent == nil {
			p.spent = map[string]time.Duration{}
		}
		p.spent[p.Phase] += now.Sub(p.since)
	}
	p.since = now
}

// phaseSeconds ends the current phase and returns the seconds spent in
// each.
func (p *Progress) phaseSeconds() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endPhase()
	out := make(map[string]float64, len(p.spent))
	for k, d := range p.spent {
		out[k] = math.Round(d.Seconds()*1000) / 1000
	}
	return out
}

func (p *Progress) view() ProgressView {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProgressView{Phase: p.Phase, Packages: p.Packages.Load(), Listed: p.Listed.Load(), Done: p.Done.Load(), Bytes: p.Bytes.Load()}
}

// Stats is what a sync did; it is stored with the sync's record.
type Stats struct {
	Upstream string `json:"upstream,omitempty"`
	// Packages is how many packages the upstream metadata names (after
	// include/exclude).
	Packages int `json:"packages"`
	// Added were recorded by this sync; Present were there already.
	Added   int `json:"added"`
	Present int `json:"present"`
	// Reused were recorded from blobs already in the store (no download).
	Reused int `json:"reused"`
	// DownloadedBytes is what the sync downloaded (packages and indexes).
	DownloadedBytes int64 `json:"downloaded_bytes"`
	// Dropped is how many of the mirror's packages the upstream no longer
	// names: kept by a union mirror, removed by an exact one (Removed).
	Dropped int `json:"dropped"`
	Removed int `json:"removed"`
	// Retired were removed by the retention policy.
	Retired int `json:"retired"`
	// Conflicts are upstream files that changed under the same name: a
	// union mirror keeps the copy it has.
	Conflicts int `json:"conflicts"`
	// Failed is how many packages could not be copied; Failures holds the
	// first messages.
	Failed   int      `json:"failed"`
	Failures []string `json:"failures,omitempty"`
	Seconds  float64  `json:"seconds"`
	// PhaseSeconds is the time spent in each phase: metadata (pointer
	// and indexes), packages (downloading, checking and recording them),
	// publishing (the generation).
	PhaseSeconds map[string]float64 `json:"phase_seconds,omitempty"`
}

// keepSyncs is how many sync records a mirror keeps (besides its last
// good one): a mirror synced every 15 minutes keeps a day of them.
const keepSyncs = 100

// maxFailures bounds the messages a record keeps.
const maxFailures = 20

// New returns a Mirror.
func New(opts Options) *Mirror {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 30 * time.Minute}
	}
	if opts.MaxFileSize == 0 {
		opts.MaxFileSize = 8 << 30
	}
	if opts.Backoff == 0 {
		opts.Backoff = 250 * time.Millisecond
	}
	if opts.Tick == 0 {
		opts.Tick = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Mirror{opts: opts, running: map[string]*run{}}
}

// Start starts a sync of the mirror (or joins the one running) and
// returns its record and a channel closed when it ends.
func (m *Mirror) Start(ctx context.Context, name string) (*meta.MirrorSync, <-chan struct{}, error) {
	r, err := m.opts.Repos.GetRepo(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if r.Kind != meta.KindMirror {
		return nil, nil, fmt.Errorf("%w: %q is a %s repository", ErrNotMirror, name, r.Kind)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ru := m.running[name]; ru != nil {
		rec := ru.rec
		return &rec, ru.done, nil
	}
	ru := &run{rec: meta.MirrorSync{RepoID: r.ID, StartedAt: m.opts.Now().UTC(), Status: meta.SyncRunning}, prog: &Progress{Phase: "starting", since: time.Now()}, done: make(chan struct{})}
	if l, ok := m.opts.Meta.(meta.SyncLocker); ok {
		// On a shared store, one node syncs a mirror at a time: the lock
		// is taken before the record is written and released after its
		// outcome is, so a "running" record whose lock is free was left
		// by a node that stopped.
		unlock, got, err := l.TryLockSync(ctx, r.ID)
		if err != nil {
			return nil, nil, err
		}
		if !got {
			return nil, nil, fmt.Errorf("%w: %q (ask again once it has finished)", ErrBusy, name)
		}
		ru.unlock = unlock
	}
	if err := m.opts.Meta.PutSync(ctx, &ru.rec); err != nil {
		if ru.unlock != nil {
			ru.unlock()
		}
		return nil, nil, fmt.Errorf("record the sync: %w", err)
	}
	m.running[name] = ru
	rec := ru.rec
	go m.run(context.WithoutCancel(ctx), r, ru)
	return &rec, ru.done, nil
}

// Sync runs a sync of the mirror (or waits for the one running) and
// returns its record.
func (m *Mirror) Sync(ctx context.Context, name string) (*meta.MirrorSync, error) {
	rec, done, err := m.Start(ctx, name)
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r, err := m.opts.Repos.GetRepo(ctx, name)
	if err != nil {
		return nil, err
	}
	recs, err := m.opts.Meta.ListSyncs(ctx, r.ID, 0)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if recs[i].ID == rec.ID {
			return &recs[i], nil
		}
	}
	return nil, fmt.Errorf("sync %d of %q: %w", rec.ID, name, meta.ErrNotFound)
}

// Running returns a channel closed when the sync id of the mirror ends,
// if this node is running it.
func (m *Mirror) Running(name string, id int64) (<-chan struct{}, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ru := m.running[name]
	if ru == nil || ru.rec.ID != id {
		return nil, false
	}
	return ru.done, true
}

// Progress returns the progress of the mirror's running sync.
func (m *Mirror) Progress(name string) (ProgressView, int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ru := m.running[name]
	if ru == nil {
		return ProgressView{}, 0, false
	}
	return ru.prog.view(), ru.rec.ID, true
}

func (m *Mirror) run(ctx context.Context, r *meta.Repo, ru *run) {
	start := m.opts.Now()
	st, err := m.sync(ctx, r, ru)
	st.Seconds = m.opts.Now().Sub(start).Seconds()
	st.PhaseSeconds = ru.prog.phaseSeconds()
	rec := &ru.rec
	rec.FinishedAt = m.opts.Now().UTC()
	status := meta.SyncOK
	if err != nil {
		status = meta.SyncFailed
		rec.Status, rec.Error, rec.Seq, rec.Generation = meta.SyncFailed, err.Error(), 0, 0
		m.opts.Log.Warn("mirror sync failed", "repo", r.Name, "err", err, "added", st.Added, "failed", st.Failed)
	} else {
		rec.Status = meta.SyncOK
		m.opts.Log.Info("mirror sync done", "repo", r.Name, "generation", rec.Generation, "packages", st.Packages,
			"added", st.Added, "dropped", st.Dropped, "bytes", st.DownloadedBytes, "took", time.Duration(st.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	rec.Stats, _ = json.Marshal(st)
	if err := m.opts.Meta.PutSync(ctx, rec); err != nil {
		m.opts.Log.Error("record mirror sync", "repo", r.Name, "err", err)
	}
	if _, err := m.opts.Meta.PruneSyncs(ctx, r.ID, keepSyncs); err != nil {
		m.opts.Log.Warn("prune mirror sync records", "repo", r.Name, "err", err)
	}
	m.opts.Metrics.MirrorSync(r.Name, status, m.opts.Now().Sub(start), st)
	m.mu.Lock()
	delete(m.running, r.Name)
	m.mu.Unlock()
	if ru.unlock != nil {
		ru.unlock()
	}
	close(ru.done)
}

// Run syncs every mirror with a sync_interval when it is due, until ctx
// ends.
func (m *Mirror) Run(ctx context.Context) {
	_, shared := m.opts.Meta.(meta.SyncLocker)
	if m.opts.Exclusive && !shared {
		m.endInterrupted(ctx)
	}
	t := time.NewTicker(m.opts.Tick)
	defer t.Stop()
	for {
		if shared {
			m.endInterrupted(ctx)
		}
		m.due(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// endInterrupted marks failed the sync records a stopped process left
// "running": on an exclusive store every such record that this process
// does not run (Run has just started), on a shared one those whose sync
// lock is free.
func (m *Mirror) endInterrupted(ctx context.Context) {
	locker, _ := m.opts.Meta.(meta.SyncLocker)
	repos, err := m.opts.Repos.ListRepos(ctx)
	if err != nil {
		m.opts.Log.Warn("mirror: list repositories", "err", err)
		return
	}
	for i := range repos {
		r := &repos[i]
		if r.Kind != meta.KindMirror {
			continue
		}
		// A running record is among the newest.
		recs, err := m.opts.Meta.ListSyncs(ctx, r.ID, 4)
		if err != nil {
			m.opts.Log.Warn("mirror: list syncs", "repo", r.Name, "err", err)
			continue
		}
		for j := range recs {
			rec := &recs[j]
			if rec.Status != meta.SyncRunning {
				continue
			}
			m.mu.Lock()
			ru := m.running[r.Name]
			m.mu.Unlock()
			if ru != nil && ru.rec.ID == rec.ID {
				continue
			}
			m.closeStale(ctx, r, rec, locker)
		}
	}
}

// closeStale marks failed a running record no process runs: with a
// locker, only if the mirror's sync lock is free, and while holding it so
// that no sync starts meanwhile.
func (m *Mirror) closeStale(ctx context.Context, r *meta.Repo, rec *meta.MirrorSync, locker meta.SyncLocker) {
	if locker != nil {
		unlock, free, err := locker.TryLockSync(ctx, r.ID)
		if err != nil || !free {
			return // running on another node (or not known)
		}
		defer unlock()
	}
	rec.Status, rec.Error, rec.FinishedAt = meta.SyncFailed, "interrupted: the server stopped before the sync ended; nothing it fetched was published", m.opts.Now().UTC()
	if err := m.opts.Meta.PutSync(ctx, rec); err != nil {
		m.opts.Log.Warn("mirror: close an interrupted sync record", "repo", r.Name, "sync", rec.ID, "err", err)
		return
	}
	m.opts.Log.Warn("mirror: a sync was interrupted by a stop; marked failed", "repo", r.Name, "sync", rec.ID, "started", rec.StartedAt)
}

func (m *Mirror) due(ctx context.Context) {
	repos, err := m.opts.Repos.ListRepos(ctx)
	if err != nil {
		return
	}
	for i := range repos {
		r := &repos[i]
		if r.Kind != meta.KindMirror {
			continue
		}
		st, err := repo.RepoSettings(r)
		if err != nil || st.SyncInterval == "" {
			continue
		}
		every, err := time.ParseDuration(st.SyncInterval)
		if err != nil {
			continue
		}
		last, err := m.opts.Meta.ListSyncs(ctx, r.ID, 1)
		if err != nil || (len(last) > 0 && m.opts.Now().Sub(last[0].StartedAt) < every) {
			continue
		}
		if _, _, err := m.Start(ctx, r.Name); errors.Is(err, ErrBusy) {
			m.opts.Log.Debug("scheduled mirror sync: another node runs it", "repo", r.Name)
		} else if err != nil {
			m.opts.Log.Warn("scheduled mirror sync", "repo", r.Name, "err", err)
		}
	}
}
