package watch

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/packyard/packyard/internal/meta"
)

// folder watches one repository's drop folder. Its loop (run) owns every
// field below the line; imports run in their own goroutines and report to
// the loop through results.
type folder struct {
	w        *Watcher
	repo     string
	repoID   int64
	format   string
	dir      string
	uploader string
	log      *slog.Logger
	cfg      atomic.Pointer[folderConfig]

	// ctx ends when the folder is stopped; imports run under it.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// moveMu serialises choosing a free name in imported/ or rejected/
	// and moving the file there.
	moveMu sync.Mutex

	// ---- owned by the loop ----
	// root is the opened drop folder: every file operation goes through
	// it, so that no symbolic link leads out of the folder. Imports get
	// it as an argument.
	root     *os.Root
	notify   *fsnotify.Watcher
	pending  map[string]*entry // by path relative to dir, "/"-separated
	noted    map[string]string // what was logged about a path left in place
	missing  bool              // the folder's absence was logged
	inflight int
	results  chan result
	timer    *time.Timer
	timerAt  time.Time
}

// entry is a file waiting to settle, or being imported.
type entry struct {
	stamp stamp
	since time.Time // when stamp was first seen
	due   time.Time // when to look again
	busy  bool      // being imported
}

// stamp is what must stay the same for Settle: the file's size and
// modification time, and for a pacman package those of its signature.
type stamp struct {
	size, mtime       int64
	sig               bool
	sigSize, sigMtime int64
}

// next says what the loop does with a file after an import attempt.
type next int

const (
	// nextDone: the file is gone (imported, rejected, vanished).
	nextDone next = iota
	// nextSettle: the file changed; wait for it to settle again.
	nextSettle
	// nextRescan: leave it until the next scan.
	nextRescan
)

type result struct {
	rel  string
	next next
}

func newFolder(w *Watcher, s spec) *folder {
	f := &folder{
		w: w, repo: s.repo, repoID: s.repoID, format: s.format, dir: s.dir,
		uploader: "watch:" + s.dir,
		log:      w.log.With("repo", s.repo, "dir", s.dir),
		done:     make(chan struct{}),
		pending:  map[string]*entry{},
		noted:    map[string]string{},
		results:  make(chan result, w.opts.Workers),
	}
	f.cfg.Store(&s.cfg)
	return f
}

func (f *folder) start(ctx context.Context) {
	f.ctx, f.cancel = context.WithCancel(ctx)
	go f.run()
}

// stop cancels the folder's imports and waits until its loop has ended.
func (f *folder) stop() {
	f.cancel()
	<-f.done
}

func (f *folder) run() {
	defer close(f.done)
	defer f.closeDir()
	f.timer = time.NewTimer(time.Hour)
	f.timer.Stop()
	rescan := time.NewTicker(f.w.opts.Rescan)
	defer rescan.Stop()

	f.open()
	f.scan()
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if f.notify != nil {
			events, errs = f.notify.Events, f.notify.Errors
		}
		select {
		case <-f.ctx.Done():
			for f.inflight > 0 {
				f.finish(<-f.results)
			}
			f.log.Info("stopped watching the drop folder")
			return
		case ev, ok := <-events:
			if ok {
				f.event(ev)
			}
		case err, ok := <-errs:
			if !ok {
				break
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				f.log.Warn("drop folder: change notifications overflowed; scanning the folder", "err", err)
				f.scan()
			} else {
				f.log.Warn("drop folder: change notification error", "err", err)
			}
		case <-rescan.C:
			f.open()
			f.scan()
		case <-f.timer.C:
			f.timerAt = time.Time{}
			f.check()
		case r := <-f.results:
			f.finish(r)
			f.check()
		}
	}
}

// open opens the drop folder, again if it was deleted and created anew,
// and starts change notifications on it.
func (f *folder) open() {
	fi, err := os.Stat(f.dir)
	if err != nil || !fi.IsDir() {
		f.closeDir()
		if !f.missing {
			f.missing = true
			f.log.Warn("drop folder is missing or not a directory; create it (it is looked for again at every rescan)", "err", err)
		}
		return
	}
	f.missing = false
	if f.root != nil {
		if rfi, err := f.root.Stat("."); err == nil && os.SameFile(fi, rfi) {
			return
		}
		f.closeDir()
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		f.log.Warn("cannot open the drop folder; trying again at the next rescan", "err", err)
		return
	}
	f.root = root
	if !f.w.opts.noNotify {
		nw, err := fsnotify.NewWatcher()
		if err == nil {
			if err = nw.Add(f.dir); err != nil {
				nw.Close()
			}
		}
		if err != nil {
			f.log.Warn("drop folder: no change notifications; new files are found by the rescan only", "err", err, "rescan", f.w.opts.Rescan)
		} else {
			f.notify = nw
		}
	}
	f.log.Info("watching the drop folder", "format", f.format, "settle", f.w.opts.Settle, "rescan", f.w.opts.Rescan)
}

func (f *folder) closeDir() {
	if f.notify != nil {
		f.notify.Close()
		f.notify = nil
	}
	if f.root != nil {
		f.root.Close()
		f.root = nil
	}
}

// maxDepth is how deep the files of a format lie below the folder: deb
// packages may be in <distribution>/<component>/.
func (f *folder) maxDepth() int {
	if f.format == meta.FormatDeb {
		return 2
	}
	return 0
}

// scan walks the folder and considers every file, as if an event had
// been lost for each.
func (f *folder) scan() {
	if f.root == nil {
		return
	}
	seen := map[string]bool{}
	f.scanDir(".", 0, seen)
	for rel := range f.noted {
		if !seen[rel] {
			delete(f.noted, rel) // gone: say it again if it returns
		}
	}
	f.check()
}

// scanDir scans dir, at depth (0 for the folder itself).
func (f *folder) scanDir(dir string, depth int, seen map[string]bool) {
	d, err := f.root.Open(dir)
	if err != nil {
		if depth == 0 {
			f.log.Warn("cannot read the drop folder", "err", err)
		}
		return
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		f.log.Warn("cannot read the drop folder", "subdir", dir, "err", err)
	}
	for _, de := range ents {
		name := de.Name()
		rel := path.Join(dir, name)
		if temporary(name) || (depth == 0 && (name == importedDir || name == rejectedDir)) {
			continue
		}
		seen[rel] = true
		if de.IsDir() {
			if depth < f.maxDepth() {
				f.watchDir(rel)
				f.scanDir(rel, depth+1, seen)
			} else {
				f.noteDir(rel)
			}
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		f.consider(rel, fi, false)
	}
}

func (f *folder) noteDir(rel string) {
	if f.format == meta.FormatDeb {
		f.note(rel, "directories below <distribution>/<component>/ are not scanned")
	} else {
		f.note(rel, "subdirectories are not scanned in the drop folder of a "+f.format+" repository; put files at its top")
	}
}

func (f *folder) watchDir(rel string) {
	if f.notify == nil {
		return
	}
	if err := f.notify.Add(filepath.Join(f.dir, filepath.FromSlash(rel))); err != nil {
		f.log.Debug("drop folder: cannot watch a subdirectory; the rescan finds its files", "subdir", rel, "err", err)
	}
}

// note logs once why a path is left in place.
func (f *folder) note(rel, reason string) {
	if f.noted[rel] == reason {
		return
	}
	f.noted[rel] = reason
	f.log.Warn("left a file in the drop folder", "file", rel, "reason", reason)
}

// event handles one change notification.
func (f *folder) event(ev fsnotify.Event) {
	if f.root == nil {
		return
	}
	rel, err := filepath.Rel(f.dir, ev.Name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return
	}
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if temporary(p) {
			return
		}
	}
	if parts[0] == importedDir || parts[0] == rejectedDir {
		return
	}
	depth := len(parts) - 1
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if e := f.pending[rel]; e != nil && !e.busy {
			delete(f.pending, rel)
		}
		delete(f.noted, rel)
		if classify(f.format, parts[depth]) == kindSignature {
			f.touchPackageOf(rel) // its package is no longer the same
		}
		return
	}
	fi, err := f.root.Lstat(rel)
	if err != nil {
		return
	}
	if fi.IsDir() {
		if !ev.Has(fsnotify.Create) {
			return
		}
		if depth < f.maxDepth() {
			// Files may have arrived before the watch: scan it.
			f.watchDir(rel)
			f.scanDir(rel, depth+1, map[string]bool{})
			f.check()
		} else {
			f.noteDir(rel)
		}
		return
	}
	if depth > f.maxDepth() {
		return
	}
	f.consider(rel, fi, true)
}

// touchPackageOf restarts the settle time of the package whose signature
// rel is.
func (f *folder) touchPackageOf(rel string) {
	pkg := strings.TrimSuffix(rel, ".sig")
	if fi, err := f.root.Lstat(pkg); err == nil {
		f.consider(pkg, fi, true)
	}
}

// consider starts (or, after a change event, restarts) the settle time of
// a file, or notes why it is left alone.
func (f *folder) consider(rel string, fi fs.FileInfo, changed bool) {
	k := classify(f.format, path.Base(rel))
	switch {
	case k == kindTemp:
		return
	case !fi.Mode().IsRegular():
		f.note(rel, "not a regular file (symbolic links and special files are not imported)")
		return
	case k == kindOther:
		f.note(rel, "not a file name the "+f.format+" repository imports ("+patterns(f.format)+")")
		return
	case k == kindSignature:
		if pfi, err := f.root.Lstat(strings.TrimSuffix(rel, ".sig")); err == nil && pfi.Mode().IsRegular() {
			// The package's stamp includes its signature.
			delete(f.pending, rel)
			f.consider(strings.TrimSuffix(rel, ".sig"), pfi, true)
			return
		}
	}
	now := time.Now()
	e := f.pending[rel]
	if e == nil {
		e = &entry{stamp: f.stampOf(rel, fi), since: now, due: now.Add(f.w.opts.Settle)}
		f.pending[rel] = e
		f.arm(e.due)
		return
	}
	if e.busy {
		return
	}
	if st := f.stampOf(rel, fi); changed || st != e.stamp {
		e.stamp, e.since, e.due = st, now, now.Add(f.w.opts.Settle)
		f.arm(e.due)
	}
}

// stampOf returns the stamp of a file, given its Lstat.
func (f *folder) stampOf(rel string, fi fs.FileInfo) stamp {
	st := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if f.format == meta.FormatArch && classify(f.format, path.Base(rel)) == kindPackage {
		if sfi, err := f.root.Lstat(rel + ".sig"); err == nil {
			st.sig, st.sigSize, st.sigMtime = true, sfi.Size(), sfi.ModTime().UnixNano()
		}
	}
	return st
}

// arm makes the timer fire by t at the latest.
func (f *folder) arm(t time.Time) {
	if f.timerAt.IsZero() || t.Before(f.timerAt) {
		f.timer.Reset(time.Until(t))
		f.timerAt = t
	}
}

// check looks at every file that is due: one that changed waits again,
// one that has settled is imported when a worker is free.
func (f *folder) check() {
	if f.root == nil || f.ctx.Err() != nil {
		return
	}
	now := time.Now()
	var wake time.Time
	later := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	for rel, e := range f.pending {
		if e.busy {
			continue
		}
		if now.Before(e.due) {
			later(e.due)
			continue
		}
		fi, err := f.root.Lstat(rel)
		if err != nil {
			delete(f.pending, rel)
			continue
		}
		if !fi.Mode().IsRegular() {
			delete(f.pending, rel)
			f.note(rel, "not a regular file (symbolic links and special files are not imported)")
			continue
		}
		if st := f.stampOf(rel, fi); st != e.stamp {
			e.stamp, e.since, e.due = st, now, now.Add(f.w.opts.Settle)
			later(e.due)
			continue
		}
		if settled := e.since.Add(f.w.opts.Settle); now.Before(settled) {
			e.due = settled
			later(e.due)
			continue
		}
		if classify(f.format, path.Base(rel)) == kindSignature {
			delete(f.pending, rel)
			pkg := strings.TrimSuffix(rel, ".sig")
			if pfi, err := f.root.Lstat(pkg); err == nil {
				f.consider(pkg, pfi, true)
				later(now.Add(f.w.opts.Settle))
			} else {
				f.note(rel, "a package signature without its package beside it; it is imported with the package when that arrives")
			}
			continue
		}
		if f.inflight >= f.w.opts.Workers {
			continue // a result wakes the loop
		}
		e.busy = true
		f.inflight++
		go func(root *os.Root, rel string, st stamp) {
			f.results <- f.importFile(root, rel, st)
		}(f.root, rel, e.stamp)
	}
	if !wake.IsZero() {
		f.arm(wake)
	}
}

// finish takes an import's result.
func (f *folder) finish(r result) {
	f.inflight--
	e := f.pending[r.rel]
	if e == nil {
		return
	}
	switch r.next {
	case nextSettle:
		now := time.Now()
		e.busy, e.stamp, e.since, e.due = false, stamp{size: -1}, now, now.Add(f.w.opts.Settle)
		f.arm(e.due)
	default:
		delete(f.pending, r.rel)
	}
}
