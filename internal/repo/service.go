// Package repo is packyard's repository service: it creates and deletes
// repositories, ingests uploads (stream to a blob, parse, record, render
// fragments once), and publishes generations through one group-committing
// publisher per repository.
package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/sign"
)

// Errors the service returns; the HTTP layer maps them to status codes.
var (
	// ErrRepoNotFound means no repository has that name.
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRepoExists means the name is taken.
	ErrRepoExists = errors.New("repository already exists")
	// ErrInvalidRepo means a repository definition is not acceptable.
	ErrInvalidRepo = errors.New("invalid repository")
	// ErrNotHosted means the repository does not take uploads.
	ErrNotHosted = errors.New("repository does not take uploads")
	// ErrConflict means a different file with the same identity exists.
	ErrConflict = errors.New("package conflict")
	// ErrPackageNotFound means no live package has that ID.
	ErrPackageNotFound = errors.New("package not found")
)

// ReservedNames cannot be repository names: the server uses them itself.
var ReservedNames = map[string]bool{
	"api": true, "ui": true, "dav": true, "metrics": true, "healthz": true, "readyz": true,
	"static": true, "favicon.ico": true, "robots.txt": true,
}

var repoNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Options configure a Service.
type Options struct {
	// MaxUploadSize bounds one package file in bytes.
	MaxUploadSize int64
	// GenerationGrace is how long superseded generations stay readable.
	GenerationGrace time.Duration
	// KeepGenerations is the minimum number of generations kept per
	// repository regardless of age.
	KeepGenerations int
	// Metrics receives observations; nil discards them.
	Metrics Metrics
	// Now returns the current time (tests may fix it).
	Now func() time.Time
	// Keys holds the signing keys; nil means repositories are unsigned.
	Keys KeySource
	// DefaultKey signs new repositories that name no key ("" for none).
	DefaultKey string
}

// KeySource gives the service its signing keys.
type KeySource interface {
	Signer(names []string) (*sign.Signer, error)
	Describe(name string) (sign.KeyInfo, error)
}

// Metrics receives the service's observations.
type Metrics interface {
	// UploadDone records an upload's result ("created", "exists",
	// "conflict", "invalid", "too_large", "error").
	UploadDone(result string)
	// Visible records the time from upload start until the package was
	// in the current generation.
	Visible(repo string, d time.Duration)
	// Published records a new generation of a repository.
	Published(repo string, number int64, d time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) UploadDone(string)                      {}
func (nopMetrics) Visible(string, time.Duration)          {}
func (nopMetrics) Published(string, int64, time.Duration) {}

// Service is the repository service.
type Service struct {
	blobs   blob.Store
	meta    meta.Store
	formats map[string]format.Format
	log     *slog.Logger
	opts    Options

	mu         sync.Mutex
	publishers map[string]*publisher
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	views      *views
	feed       feedSignal
	// digestLocks serialise commit-then-record of identical uploads.
	digestLocks [64]sync.Mutex
	// cfgMu serialises configuration read-merge-writes, so that
	// concurrent patches are not lost.
	cfgMu sync.Mutex
}

// New returns a Service. Formats are keyed by their Name.
func New(blobs blob.Store, m meta.Store, formats []format.Format, log *slog.Logger, opts Options) *Service {
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeepGenerations < 1 {
		opts.KeepGenerations = 3
	}
	fm := make(map[string]format.Format, len(formats))
	for _, f := range formats {
		fm[f.Name()] = f
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		blobs: blobs, meta: m, formats: fm, log: log, opts: opts,
		publishers: map[string]*publisher{}, ctx: ctx, cancel: cancel,
	}
	s.views = newViews(m)
	return s
}

// Start publishes any repository whose current generation lags behind its
// packages (after a crash between an upload and its publish) and starts
// background retention.
func (s *Service) Start(ctx context.Context) error {
	repos, err := s.meta.ListRepos(ctx)
	if err != nil {
		return fmt.Errorf("list repositories: %w", err)
	}
	for i := range repos {
		r := repos[i]
		if _, ok := s.formats[r.Format]; !ok {
			continue
		}
		p := s.publisher(&r)
		p.kick()
	}
	s.wg.Add(1)
	go s.retentionLoop()
	if w, ok := s.meta.(meta.EventWatcher); ok {
		since, err := s.meta.LastSeq(ctx)
		if err != nil {
			return fmt.Errorf("read the event log: %w", err)
		}
		s.wg.Add(1)
		go s.follow(s.ctx, w, since)
	}
	return nil
}

// Close stops the publishers and waits for them.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Blobs returns the blob store (for the read path).
func (s *Service) Blobs() blob.Store { return s.blobs }

// Meta returns the metadata store.
func (s *Service) Meta() meta.Store { return s.meta }

// Format returns the format implementation for a name.
func (s *Service) Format(name string) (format.Format, bool) {
	f, ok := s.formats[name]
	return f, ok
}

// RepoKind returns a repository's kind as the read path holds it in
// memory (a kind never changes), so that dispatching a read by kind costs
// no query.
func (s *Service) RepoKind(ctx context.Context, name string) (string, error) {
	v, err := s.views.get(ctx, name)
	if err != nil {
		return "", err
	}
	return v.repo.Kind, nil
}

// CachedRepo returns a repository as the read path holds it in memory:
// current as of the last publish, configuration change or change-feed
// event, without a query to the store. The caller must not modify it.
func (s *Service) CachedRepo(ctx context.Context, name string) (*meta.Repo, error) {
	v, err := s.views.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return &v.repo, nil
}

// RepoSpec is what a caller gives to create a repository.
type RepoSpec struct {
	Name   string
	Format string
	Kind   string
	Config json.RawMessage
}

// ValidateName checks a repository name.
func ValidateName(name string) error {
	if ReservedNames[name] {
		return fmt.Errorf("%w: %q is reserved by the server", ErrInvalidRepo, name)
	}
	if !repoNameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q must be 1-63 characters of a-z, 0-9, '.', '_', '-' and start with a letter or digit", ErrInvalidRepo, name)
	}
	return nil
}

// CreateRepo creates a repository and publishes its first (empty)
// generation, so clients can be pointed at it at once.
func (s *Service) CreateRepo(ctx context.Context, spec RepoSpec) (*meta.Repo, error) {
	if err := ValidateName(spec.Name); err != nil {
		return nil, err
	}
	if spec.Kind == "" {
		spec.Kind = meta.KindHosted
	}
	if _, ok := s.formats[spec.Format]; !ok {
		return nil, fmt.Errorf("%w: format %q is not supported (supported: %s)", ErrInvalidRepo, spec.Format, s.formatNames())
	}
	if spec.Kind != meta.KindHosted && spec.Kind != meta.KindProxy && spec.Kind != meta.KindMirror {
		return nil, fmt.Errorf("%w: kind %q is not supported (supported: hosted, mirror, proxy)", ErrInvalidRepo, spec.Kind)
	}
	cfg := []byte(spec.Config)
	if t := bytes.TrimSpace(cfg); len(t) == 0 || string(t) == "null" {
		// No configuration; a JSON null would otherwise be stored and
		// decode to a nil map that cannot take the default key.
		cfg = []byte("{}")
	}
	st, err := parseSettings(cfg)
	if err != nil {
		return nil, err
	}
	// A passthrough proxy serves its upstream's signatures: it signs
	// nothing, so it takes no default key.
	// An exact mirror neither.
	if (spec.Kind != meta.KindProxy || st.Mode == ModeUnion) && !(spec.Kind == meta.KindMirror && st.Mode == ModeExact) {
		if cfg, err = s.withDefaultKey(cfg); err != nil {
			return nil, err
		}
		if st, err = parseSettings(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkKind(spec.Kind, spec.Format, st); err != nil {
		return nil, err
	}
	r := &meta.Repo{Name: spec.Name, Format: spec.Format, Kind: spec.Kind, Config: cfg}
	s.cfgMu.Lock()
	err = s.prepareWatchDir(ctx, spec.Name, spec.Kind, nil, cfg)
	if err == nil {
		err = s.meta.CreateRepo(ctx, r)
	}
	s.cfgMu.Unlock()
	if err != nil {
		if errors.Is(err, ErrInvalidRepo) {
			return nil, err
		}
		if errors.Is(err, meta.ErrExists) {
			return nil, fmt.Errorf("%w: %q", ErrRepoExists, spec.Name)
		}
		return nil, fmt.Errorf("create repository %q: %w", spec.Name, err)
	}
	s.feed.bump()
	if _, err := s.publisher(r).waitVisible(ctx, 0); err != nil {
		return nil, fmt.Errorf("publish first generation of %q: %w", spec.Name, err)
	}
	return s.GetRepo(ctx, spec.Name)
}

func (s *Service) formatNames() string {
	out := ""
	for n := range s.formats {
		if out != "" {
			out += ", "
		}
		out += n
	}
	return out
}

// GetRepo returns a repository by name.
func (s *Service) GetRepo(ctx context.Context, name string) (*meta.Repo, error) {
	r, err := s.meta.GetRepo(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrRepoNotFound, name)
	}
	return r, err
}

// ListRepos lists every repository.
func (s *Service) ListRepos(ctx context.Context) ([]meta.Repo, error) {
	return s.meta.ListRepos(ctx)
}

// DeleteRepo deletes a repository, its packages and generations. Its blobs
// stay until garbage collection.
func (s *Service) DeleteRepo(ctx context.Context, name string) error {
	s.mu.Lock()
	if p, ok := s.publishers[name]; ok {
		p.stop()
		delete(s.publishers, name)
	}
	s.mu.Unlock()
	err := s.meta.DeleteRepo(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrRepoNotFound, name)
	}
	s.views.drop(name)
	s.feed.bump()
	return err
}

// RemovePackage removes a package from a repository and waits until the
// removal is published.
func (s *Service) RemovePackage(ctx context.Context, repoName string, id int64) (int64, error) {
	r, err := s.GetRepo(ctx, repoName)
	if err != nil {
		return 0, err
	}
	if r.Kind == meta.KindMirror {
		return 0, fmt.Errorf("%w: the packages of mirror %q follow its upstream; keep one out with an exclude pattern (PATCH exclude), then sync", ErrNotHosted, repoName)
	}
	seq, err := s.meta.RemovePackage(ctx, r.ID, id)
	if errors.Is(err, meta.ErrNotFound) {
		return 0, fmt.Errorf("%w: %d in %q", ErrPackageNotFound, id, repoName)
	}
	if err != nil {
		return 0, fmt.Errorf("remove package %d from %q: %w", id, repoName, err)
	}
	s.feed.bump()
	return s.publisher(r).waitVisible(ctx, seq)
}

// publisher returns the repository's publisher, starting it if needed.
func (s *Service) publisher(r *meta.Repo) *publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.publishers[r.Name]; ok && p.repoID == r.ID {
		return p
	}
	p := newPublisher(s, r)
	s.publishers[r.Name] = p
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run(s.ctx)
	}()
	return p
}

func (s *Service) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.PruneGenerations(s.ctx); err != nil {
				s.log.Warn("generation retention failed", "err", err)
			}
		}
	}
}

// PruneGenerations deletes generations past the grace period, keeping at
// least KeepGenerations per repository.
func (s *Service) PruneGenerations(ctx context.Context) error {
	repos, err := s.meta.ListRepos(ctx)
	if err != nil {
		return err
	}
	before := s.opts.Now().Add(-s.opts.GenerationGrace)
	for _, r := range repos {
		n, err := s.meta.PruneGenerations(ctx, r.ID, before, s.opts.KeepGenerations)
		if err != nil {
			return fmt.Errorf("prune generations of %q: %w", r.Name, err)
		}
		sns, err := s.meta.ListSnapshots(ctx, r.ID)
		if err != nil {
			return fmt.Errorf("list snapshots of %q: %w", r.Name, err)
		}
		if len(n) > 0 || len(sns) > 0 {
			snaps := make(map[int64]bool, len(sns))
			for _, sn := range sns {
				snaps[sn.Generation] = true
			}
			s.views.dropGenerations(r.Name, n, snaps)
		}
		if len(n) > 0 {
			s.log.Info("pruned generations", "repo", r.Name, "count", len(n))
		}
	}
	return nil
}

// UpdateRepoConfig merges patch into a repository's configuration (each
// top-level key replaces the old one; null removes it) and waits until a
// generation published with the new configuration (new signing keys, for
// instance) is current.
func (s *Service) UpdateRepoConfig(ctx context.Context, name string, patch []byte) (*meta.Repo, error) {
	r, err := s.writeRepoConfig(ctx, name, patch)
	if err != nil {
		return nil, err
	}
	s.feed.bump()
	if _, ok := s.formats[r.Format]; ok {
		if _, err := s.publisher(r).republish(ctx); err != nil {
			return nil, fmt.Errorf("publish %q with its new configuration: %w", name, err)
		}
	}
	return s.GetRepo(ctx, name)
}

// writeRepoConfig merges patch into the stored configuration and stores
// the result; it returns the repository as it was before.
func (s *Service) writeRepoConfig(ctx context.Context, name string, patch []byte) (*meta.Repo, error) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	r, err := s.GetRepo(ctx, name)
	if err != nil {
		return nil, err
	}
	cfg, err := mergeConfig(r.Config, patch)
	if err != nil {
		return nil, err
	}
	st, err := parseSettings(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkKind(r.Kind, r.Format, st); err != nil {
		return nil, err
	}
	if err := s.checkKeys(st); err != nil {
		return nil, err
	}
	if err := s.prepareWatchDir(ctx, name, r.Kind, r.Config, cfg); err != nil {
		return nil, err
	}
	err = s.meta.UpdateRepoConfig(ctx, name, cfg)
	s.views.drop(name) // its configuration is cached in the view
	if err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrRepoNotFound, name)
		}
		return nil, err
	}
	return r, nil
}
