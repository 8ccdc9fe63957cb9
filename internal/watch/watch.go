// Package watch imports the package files that operators drop into a
// repository's drop folder: the directory its configuration names as
// watch_dir.
//
// Every drop folder is followed with change notifications (fsnotify) and,
// because notifications get lost (NFS, a full event queue, files copied
// while the server was down), scanned in full every Options.Rescan. A
// file is imported once its size and modification time have stayed the
// same for Options.Settle, then deleted, or moved to imported/ when the
// repository sets watch_keep_imported. A file the repository refuses (not
// a valid package, too large, a conflict) is moved to rejected/ with a
// FILE.error beside it that says why. A file that could not be imported
// for a passing reason (shutdown, an I/O error, a busy database) stays
// and is tried again at the next scan. Nothing is deleted that was not
// imported.
//
// Layout of a drop folder:
//
//	<watch_dir>/
//	├── foo-1.0-1.x86_64.rpm        a package: imported, then deleted
//	├── bookworm/main/bar_1_all.deb APT: <distribution>/<component>/FILE;
//	├── bookworm/baz_1_all.deb        <distribution>/FILE (default_component or main);
//	├── qux_1_all.deb                 FILE (default_distribution, default_component)
//	├── .foo.rpm.Xa9d2k             hidden and temporary names are waited for
//	├── README                      anything else stays, logged once
//	├── imported/                   imported files (watch_keep_imported), never scanned
//	└── rejected/                   refused files and FILE.error, never scanned
//
// Names that clash in imported/ or rejected/ get a number before their
// suffix (foo-1.0-1.x86_64.1.rpm); nothing is overwritten.
package watch

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// Service is what the watcher needs of the repository service
// (*repo.Service).
type Service interface {
	// ListRepos returns every repository with its configuration.
	ListRepos(ctx context.Context) ([]meta.Repo, error)
	// Ingest stores one package; with Upload.Wait it returns once the
	// package is published. Errors wrap format.ErrInvalidPackage,
	// repo.ErrConflict, … as repo.Service.Ingest documents.
	Ingest(ctx context.Context, u repo.Upload) (*repo.Result, error)
	// WaitEvents blocks until an event after seq may exist, ctx ends or
	// poll passes.
	WaitEvents(ctx context.Context, seq int64, poll time.Duration)
}

// Feed is the change feed (a meta.Store), read to learn at once that a
// repository was created, changed or deleted.
type Feed interface {
	// LastSeq returns the highest event sequence number.
	LastSeq(ctx context.Context) (int64, error)
	// Events returns up to limit events after since, in order.
	Events(ctx context.Context, since int64, limit int) ([]meta.Event, error)
}

// Metrics receives the watcher's observations.
type Metrics interface {
	// WatchFile counts one file of a repository's drop folder by result:
	// ResultImported, ResultIdentical, ResultRejected or ResultRetry.
	WatchFile(repo, result string)
}

// Results of one file.
const (
	// ResultImported: a new package, now published.
	ResultImported = "imported"
	// ResultIdentical: the same bytes were already in the repository.
	ResultIdentical = "identical"
	// ResultRejected: refused and moved to rejected/.
	ResultRejected = "rejected"
	// ResultRetry: left in place, to be tried again.
	ResultRetry = "retry"
)

type nopMetrics struct{}

func (nopMetrics) WatchFile(string, string) {}

// Options configure a Watcher.
type Options struct {
	// Settle is how long a file's size and modification time must stay
	// the same before it is imported (default 2s).
	Settle time.Duration
	// Rescan is how often every drop folder is scanned in full and the
	// repositories are read again (default 30s).
	Rescan time.Duration
	// Workers bounds the imports running at once per drop folder
	// (default 4).
	Workers int
	// Metrics receives observations; nil discards them.
	Metrics Metrics

	// noNotify turns change notifications off, as if every event were
	// lost (tests): only scans find files.
	noNotify bool
}

// feedPoll bounds how late the watcher learns of a repository changed by
// another server process (the feed signals this process's own changes at
// once).
const feedPoll = time.Second

// Watcher watches the drop folder of every repository that has one.
type Watcher struct {
	svc  Service
	feed Feed
	log  *slog.Logger
	opts Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards folders, by repository name.
	mu      sync.Mutex
	folders map[string]*folder
}

// New returns a Watcher; Start starts it.
func New(svc Service, feed Feed, log *slog.Logger, opts Options) *Watcher {
	if opts.Settle <= 0 {
		opts.Settle = 2 * time.Second
	}
	if opts.Rescan <= 0 {
		opts.Rescan = 30 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	return &Watcher{svc: svc, feed: feed, log: log, opts: opts, folders: map[string]*folder{}}
}

// Start watches the drop folder of every repository (the files already
// there are imported) and follows repository changes until ctx ends or
// Close is called. Imports still running then are cancelled: their files
// stay for the next start.
func (w *Watcher) Start(ctx context.Context) error {
	seq, err := w.feed.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("drop folders: read the change feed: %w", err)
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	if err := w.reload(); err != nil {
		w.cancel()
		return fmt.Errorf("drop folders: %w", err)
	}
	w.wg.Add(1)
	go w.follow(seq)
	return nil
}

// Close stops watching and waits for the imports under way to end.
func (w *Watcher) Close() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, f := range w.folders {
		f.stop()
		delete(w.folders, name)
	}
}

// follow reloads the repositories when the feed says one was created,
// changed or deleted, and at least every Rescan.
func (w *Watcher) follow(seq int64) {
	defer w.wg.Done()
	last := time.Now()
	poll := min(feedPoll, w.opts.Rescan)
	for {
		w.svc.WaitEvents(w.ctx, seq, poll)
		if w.ctx.Err() != nil {
			return
		}
		changed := false
		for {
			evs, err := w.feed.Events(w.ctx, seq, 500)
			if err != nil {
				if w.ctx.Err() != nil {
					return
				}
				w.log.Warn("drop folders: cannot read the change feed", "err", err)
				changed = true // read the repositories instead
				select {
				case <-w.ctx.Done():
					return
				case <-time.After(poll):
				}
				if n, err := w.feed.LastSeq(w.ctx); err == nil {
					seq = n
				}
				break
			}
			for _, e := range evs {
				seq = e.Seq
				if strings.HasPrefix(e.Type, "repo.") {
					changed = true
				}
			}
			if len(evs) < 500 {
				break
			}
		}
		if changed || time.Since(last) >= w.opts.Rescan {
			last = time.Now()
			if err := w.reload(); err != nil && w.ctx.Err() == nil {
				w.log.Warn("drop folders: cannot read the repositories; watching the folders as they were", "err", err)
			}
		}
	}
}

// reload starts, changes and stops folders to match the repositories.
func (w *Watcher) reload() error {
	repos, err := w.svc.ListRepos(w.ctx)
	if err != nil {
		return fmt.Errorf("list repositories: %w", err)
	}
	want := map[string]spec{}
	claimed := map[string]string{}
	for i := range repos {
		r := &repos[i]
		st, err := repo.RepoSettings(r)
		if err != nil {
			w.log.Warn("drop folders: repository configuration is not valid; its drop folder is not watched", "repo", r.Name, "err", err)
			continue
		}
		if st.WatchDir == "" || r.Kind != meta.KindHosted {
			continue
		}
		dir := filepath.Clean(st.WatchDir)
		if other, ok := claimed[dir]; ok {
			w.log.Warn("drop folders: two repositories name one watch_dir; only the first is watched", "dir", dir, "watched_for", other, "repo", r.Name)
			continue
		}
		claimed[dir] = r.Name
		want[r.Name] = spec{
			repo: r.Name, repoID: r.ID, format: r.Format, dir: dir,
			cfg: folderConfig{keep: st.WatchKeepImported, distribution: st.DefaultDistribution, component: st.DefaultComponent},
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return nil
	}
	// Stop first: a directory moved from one repository to another must
	// never be watched twice.
	for name, f := range w.folders {
		s, ok := want[name]
		if ok && s.repoID == f.repoID && s.format == f.format && s.dir == f.dir {
			f.cfg.Store(&s.cfg)
			continue
		}
		f.stop()
		delete(w.folders, name)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := w.folders[name]; ok {
			continue
		}
		s := want[name]
		f := newFolder(w, s)
		w.folders[name] = f
		f.start(w.ctx)
	}
	return nil
}

// spec is a repository's drop folder as its configuration says it.
type spec struct {
	repo   string
	repoID int64
	format string
	dir    string
	cfg    folderConfig
}

// folderConfig holds the settings a running folder picks up without a
// restart.
type folderConfig struct {
	keep         bool
	distribution string
	component    string
}
