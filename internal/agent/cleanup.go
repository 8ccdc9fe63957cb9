package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// cleanupInterval is how often expired files and the temporary files a
// crash left behind are deleted.
const cleanupInterval = time.Minute

// sweepStats counts what a sweep deleted.
type sweepStats struct {
	Unmanaged int `json:"unmanaged"`
	Expired   int `json:"expired"`
}

// runCleanup deletes the files whose grace period has passed and, with
// temps, stale temporary files, and logs what went wrong. It runs on the
// worker between syncs, when no download is in progress: every temporary
// file it finds is a crash's or a failed download's.
func (a *Agent) runCleanup(ctx context.Context, temps bool) {
	st, err := a.cleanup(ctx, temps)
	a.metrics.deleted.Add(float64(st.Unmanaged + st.Expired))
	if st.Expired > 0 || st.Unmanaged > 0 {
		a.log.Info("deleted expired and temporary files", "expired", st.Expired, "temporary", st.Unmanaged)
	}
	if err != nil && ctx.Err() == nil {
		a.log.Warn("deleting expired and temporary files failed", "err", err)
	}
}

func (a *Agent) cleanup(ctx context.Context, temps bool) (sweepStats, error) {
	var st sweepStats
	n, err := a.expire(ctx, time.Now())
	st.Expired = n
	if err != nil || !temps {
		return st, err
	}
	a.mu.Lock()
	known := map[string]bool{}
	for name := range a.served {
		known[name] = true
	}
	a.mu.Unlock()
	ours := func(repoName string) bool { return known[repoName] || slices.Contains(a.cfg.Repos, repoName) }
	_, err = a.walkTree(ours, func(_, p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tmpPrefix) || a.keep[p] {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		st.Unmanaged++
		return nil
	})
	return st, err
}

// expire deletes the retired files whose grace period has passed by now
// (keep_files stay) and forgets them.
func (a *Agent) expire(ctx context.Context, now time.Time) (int, error) {
	rows, err := a.state.retired(ctx, now.Add(-seconds(a.cfg.GracePeriod)))
	if err != nil {
		return 0, fmt.Errorf("read expired files: %w", err)
	}
	var drop []string
	var errs []error
	n := 0
	for _, key := range rows {
		p := filepath.Join(a.root, filepath.FromSlash(key))
		if !a.keep[p] {
			// A symbolic link in its place is removed, not followed.
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			n++
		}
		drop = append(drop, key)
	}
	if len(drop) > 0 {
		if err := a.state.commit(ctx, "", nil, nil, nil, drop, now); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// walkTree calls fn for every file, symbolic link and other non-directory
// under root_dir, with its key (relative to root_dir, slash-separated) and
// its path, and returns the directories that may be removed when empty,
// deepest first.
//
// A repository's directory may be a symbolic link (root_dir/el ->
// /data/el): it is walked when ours says the repository is the agent's,
// and is never passed to fn nor returned, so it is never removed. Any
// other symbolic link at the top of root_dir is left alone; symbolic links
// deeper down are passed to fn as they are, never followed. The
// directories of followed repositories are never returned either.
func (a *Agent) walkTree(ours func(repoName string) bool, fn func(key, p string, d fs.DirEntry) error) ([]string, error) {
	ents, err := os.ReadDir(a.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(a.root, name)
		real := p
		switch {
		case e.IsDir():
			if !ours(name) {
				dirs = append(dirs, p) // a repository that is no longer followed
			}
		case e.Type()&fs.ModeSymlink != 0:
			fi, err := os.Stat(p)
			if err != nil || !fi.IsDir() || !ours(name) {
				continue // not the agent's
			}
			if real, err = filepath.EvalSymlinks(p); err != nil {
				return nil, err
			}
		default:
			if err := fn(name, p, e); err != nil {
				return nil, err
			}
			continue
		}
		err := filepath.WalkDir(real, func(rp string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			rel, err := filepath.Rel(real, rp)
			if err != nil || rel == "." {
				return err
			}
			lp := filepath.Join(p, rel)
			if d.IsDir() {
				dirs = append(dirs, lp)
				return nil
			}
			return fn(name+"/"+filepath.ToSlash(rel), lp, d)
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs, nil
}

// sweep deletes files whose grace period has passed and files under
// root_dir that the agent does not manage, except keep_files. With adopt
// (the state was lost), unknown files inside followed repositories are
// recorded as retired instead: they may be an older generation's.
func (a *Agent) sweep(ctx context.Context, followed []string, adopt bool) (sweepStats, error) {
	var st sweepStats
	now := time.Now()
	n, err := a.expire(ctx, now)
	st.Expired = n
	if err != nil {
		return st, err
	}
	rows, err := a.state.files(ctx, "")
	if err != nil {
		return st, err
	}
	known := map[string]bool{}
	parents := map[string]bool{} // directories that hold managed files
	for key, row := range rows {
		known[row.Repo] = true
		for d := path.Dir(key); d != "." && !parents[d]; d = path.Dir(d) {
			parents[d] = true
		}
	}
	ours := func(repoName string) bool { return known[repoName] || slices.Contains(followed, repoName) }
	var adopted []fileRow
	dirs, err := a.walkTree(ours, func(key, p string, d fs.DirEntry) error {
		if _, ok := rows[key]; ok || a.keep[p] {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 && parents[key] {
			return nil // a link to a directory of managed files: not followed, kept
		}
		repoName, _, _ := strings.Cut(key, "/")
		if adopt && d.Type().IsRegular() && slices.Contains(followed, repoName) && !strings.HasPrefix(d.Name(), tmpPrefix) {
			if fi, err := d.Info(); err == nil {
				if dg, err := hashFile(p); err == nil {
					adopted = append(adopted, fileRow{Path: key, Repo: repoName, Digest: dg, Size: fi.Size(),
						MTime: fi.ModTime().UnixNano(), RetiredAt: now.UnixNano()})
					return nil
				}
			}
		}
		// A symbolic link is removed, not what it points to.
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		a.log.Info("deleted a file the agent does not manage", "path", p)
		st.Unmanaged++
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("sweep %s: %w", a.root, err)
	}
	// Empty directories, deepest first; a non-empty one is left alone.
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	if err := a.state.commit(ctx, "", nil, adopted, nil, nil, now); err != nil {
		return st, err
	}
	return st, nil
}
