package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// applyStats counts what one application of a generation did.
type applyStats struct {
	Files      int   `json:"files"`
	Downloaded int   `json:"downloaded"`
	Copied     int   `json:"copied"`
	Adopted    int   `json:"adopted"`
	Repaired   int   `json:"repaired"`
	Bytes      int64 `json:"bytes"`
}

// applyGeneration makes the tree serve gl: it downloads and verifies what
// is missing or differs, places packages and other content-addressed files
// first and switches pointer files last, then records the new position.
// A file whose state row and size+mtime agree is trusted unless rehash;
// any other file on disk is hashed and kept if it verifies. When gl is a
// difference from the served generation (gl.Since), the files it does not
// name are kept as they are. If anything fails, no pointer file is
// switched.
func (a *Agent) applyGeneration(ctx context.Context, gl *genList, rehash bool) (applyStats, error) {
	var st applyStats
	if !validRepoName(gl.Repo) {
		return st, fmt.Errorf("origin sent repository name %q, which cannot be a directory", gl.Repo)
	}
	rows, err := a.state.files(ctx, gl.Repo)
	if err != nil {
		return st, fmt.Errorf("read state of %s: %w", gl.Repo, err)
	}
	now := time.Now()
	type want struct {
		f    genFile
		key  string // relative to root_dir
		dst  string
		have bool // a managed file that should have been right
	}
	var (
		need   []want
		put    []fileRow
		inList = make(map[string]bool, len(gl.Files)) // the new generation's files
		seen   = make(map[string]bool, len(gl.Files))
		local  = map[string]string{} // digest -> a verified file on disk
	)
	if gl.Since > 0 {
		// A difference from the served generation: its files stay,
		// except the removed ones; only the listed ones are looked at.
		for key, row := range rows {
			if row.RetiredAt == 0 {
				inList[key] = true
			}
		}
		for _, p := range gl.Removed {
			if !validFilePath(p) {
				return st, fmt.Errorf("origin's difference of %s generation %d removes a bad path %q: refusing the generation", gl.Repo, gl.Generation, p)
			}
			delete(inList, gl.Repo+"/"+p)
		}
	}
	for _, f := range gl.Files {
		if !validFilePath(f.Path) || !validDigest(f.Digest) || f.Size < 0 {
			return st, fmt.Errorf("origin's file list of %s generation %d has a bad entry %q (digest %q, size %d): refusing the generation",
				gl.Repo, gl.Generation, f.Path, f.Digest, f.Size)
		}
		key := gl.Repo + "/" + f.Path
		if seen[key] {
			return st, fmt.Errorf("origin's file list of %s generation %d names %s twice", gl.Repo, gl.Generation, f.Path)
		}
		seen[key], inList[key] = true, true
		st.Files++
		dst := filepath.Join(a.root, filepath.FromSlash(key))
		fi, serr := os.Stat(dst)
		row, known := rows[key]
		switch {
		case serr == nil && fi.Mode().IsRegular() && fi.Size() == f.Size && known && row.Digest == f.Digest &&
			row.Size == f.Size && row.MTime == fi.ModTime().UnixNano() && !rehash:
			local[f.Digest] = dst
			if row.RetiredAt != 0 {
				row.RetiredAt = 0
				put = append(put, row)
			}
			continue
		case serr == nil && fi.Mode().IsRegular() && fi.Size() == f.Size:
			if d, herr := hashFile(dst); herr == nil && d == f.Digest {
				local[f.Digest] = dst
				if !known || row.Digest != f.Digest || row.MTime != fi.ModTime().UnixNano() || row.RetiredAt != 0 {
					if !known {
						st.Adopted++
					}
					put = append(put, fileRow{Path: key, Repo: gl.Repo, Digest: f.Digest, Size: f.Size, MTime: fi.ModTime().UnixNano()})
				}
				continue
			}
		}
		// A file the agent wrote for this very generation's content but
		// that is now missing or different is a repair; a pointer file
		// that changes is not.
		need = append(need, want{f: f, key: key, dst: dst, have: known && row.Digest == f.Digest && row.RetiredAt == 0})
	}

	// Fetch what is needed, each digest once; files with a digest already
	// on disk are copied from there (after checking it again).
	byDigest := map[string][]int{}
	var order []string
	for i, w := range need {
		if len(byDigest[w.f.Digest]) == 0 {
			order = append(order, w.f.Digest)
		}
		byDigest[w.f.Digest] = append(byDigest[w.f.Digest], i)
	}
	temps := make([]*tmpFile, len(need))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.Concurrency)
	// fetched is t (nil: get it now) for the file of digest d, then its
	// copies for the other paths with that digest.
	fetched := func(d string, t *tmpFile) error {
		idx := byDigest[d]
		first := need[idx[0]]
		copied := false
		if t == nil {
			if src, ok := local[d]; ok {
				if f, oerr := os.Open(src); oerr == nil {
					t, _ = writeVerified(first.dst, f, d, first.f.Size)
					f.Close()
					copied = t != nil
				}
			}
		}
		if t == nil {
			var err error
			if t, err = a.fetchFile(gctx, first.f, first.dst); err != nil {
				return err
			}
		}
		mu.Lock()
		temps[idx[0]] = t
		if copied {
			st.Copied++
		} else {
			st.Downloaded++
			st.Bytes += first.f.Size
		}
		mu.Unlock()
		for _, i := range idx[1:] {
			c, err := copyTemp(t, need[i].dst, d, need[i].f.Size)
			if err != nil {
				return err
			}
			mu.Lock()
			temps[i] = c
			mu.Unlock()
		}
		return nil
	}
	// Small single-blob files go in batches, one request each
	// (POST /api/v1/blobs); the rest, and whatever a batch did not
	// deliver, one by one.
	var batch []string
	var batchBytes int64
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ds := batch
		batch, batchBytes = nil, 0
		g.Go(func() error {
			items := make([]batchItem, len(ds))
			for i, d := range ds {
				first := need[byDigest[d][0]]
				items[i] = batchItem{f: first.f, dst: first.dst}
			}
			got := a.fetchBatch(gctx, items)
			for i, d := range ds {
				if err := fetched(d, got[i]); err != nil {
					for _, t := range got[i+1:] {
						if t != nil {
							t.discard()
						}
					}
					return err
				}
			}
			return nil
		})
	}
	for _, d := range order {
		first := need[byDigest[d][0]]
		if _, isLocal := local[d]; !isLocal && a.batchable(first.f) {
			batch = append(batch, d)
			batchBytes += first.f.Size
			if len(batch) >= batchFiles || batchBytes >= batchBytesMax {
				flush()
			}
			continue
		}
		g.Go(func() error { return fetched(d, nil) })
	}
	flush()
	ferr := g.Wait()
	if err := syncTemps(temps); err != nil {
		for _, t := range temps {
			if t != nil {
				t.discard()
			}
		}
		return st, fmt.Errorf("sync %s generation %d: make the downloaded files durable: %w (the previous generation stays served)", gl.Repo, gl.Generation, errors.Join(ferr, err))
	}
	dirs := map[string]bool{}
	// Content-addressed files go in as soon as everything is here, or as
	// far as it got: nothing names them yet. They are recorded retired
	// until the generation is complete, so that a failed one's files are
	// cleaned up after the grace period.
	var pointers []int
	for i, w := range need {
		t := temps[i]
		if t == nil {
			continue
		}
		if w.f.Pointer {
			if ferr != nil {
				t.discard()
			} else {
				pointers = append(pointers, i)
			}
			continue
		}
		size, mt, err := t.place()
		if err != nil {
			ferr = errors.Join(ferr, fmt.Errorf("write %s: %w", w.key, err))
			continue
		}
		if w.have {
			st.Repaired++
		}
		dirs[filepath.Dir(w.dst)] = true
		row := fileRow{Path: w.key, Repo: gl.Repo, Digest: w.f.Digest, Size: size, MTime: mt.UnixNano()}
		if old, ok := rows[w.key]; ferr != nil && (!ok || old.RetiredAt != 0) {
			// Not (yet) part of a served generation.
			row.RetiredAt = now.UnixNano()
		}
		put = append(put, row)
	}
	if ferr != nil {
		if err := a.syncDirs(dirs); err != nil {
			a.log.Warn("fsync of directories failed", "err", err)
		}
		if err := a.state.commit(ctx, gl.Repo, nil, put, nil, nil, now); err != nil {
			a.log.Warn("recording partial download failed", "repo", gl.Repo, "err", err)
		}
		return st, fmt.Errorf("sync %s generation %d: %w (the previous generation stays served)", gl.Repo, gl.Generation, ferr)
	}
	if err := a.syncDirs(dirs); err != nil {
		return st, err
	}
	clear(dirs)
	// Pointer files last, the top-level ones (repomd.xml, Release, NAME.db)
	// after the indexes they name, InRelease at the very end.
	sort.SliceStable(pointers, func(i, j int) bool {
		return pointerRank(need[pointers[i]].f.Path) < pointerRank(need[pointers[j]].f.Path)
	})
	for k, i := range pointers {
		w := need[i]
		if err := temps[i].bumpMTime(now); err != nil {
			a.log.Warn("setting a pointer file's modification time failed", "path", w.key, "err", err)
		}
		size, mt, err := temps[i].place()
		if err != nil {
			for _, j := range pointers[k+1:] {
				temps[j].discard()
			}
			if err := a.syncDirs(dirs); err != nil {
				a.log.Warn("fsync of directories failed", "err", err)
			}
			return st, fmt.Errorf("switch %s: %w", w.key, err)
		}
		if w.have {
			st.Repaired++
		}
		dirs[filepath.Dir(w.dst)] = true
		put = append(put, fileRow{Path: w.key, Repo: gl.Repo, Digest: w.f.Digest, Size: size, MTime: mt.UnixNano()})
	}
	if err := a.syncDirs(dirs); err != nil {
		return st, err
	}
	var retire []string
	for key, row := range rows {
		if !inList[key] && row.RetiredAt == 0 {
			retire = append(retire, key)
		}
	}
	rs := &repoState{Generation: gl.Generation, Seq: gl.Seq, SyncedAt: now}
	if err := a.state.commit(ctx, gl.Repo, rs, put, retire, nil, now); err != nil {
		return st, fmt.Errorf("record %s generation %d: %w", gl.Repo, gl.Generation, err)
	}
	return st, nil
}

// pointerRank orders pointer files: indexes first, then the files that
// name them, then their signatures, InRelease last.
func pointerRank(p string) int {
	base := path.Base(p)
	switch {
	case base == "InRelease":
		return 4
	case base == "repomd.xml.asc", base == "Release.gpg", strings.HasSuffix(base, ".db.sig"), strings.HasSuffix(base, ".files.sig"):
		return 3
	case base == "repomd.xml", base == "Release", strings.HasSuffix(base, ".db"), strings.HasSuffix(base, ".files"),
		strings.Contains(base, ".db.tar"), strings.Contains(base, ".files.tar"):
		return 2
	}
	return 1
}
