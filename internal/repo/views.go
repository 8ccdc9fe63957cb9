package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Object is one file a repository serves.
type Object struct {
	Path        string
	Digest      string
	Size        int64
	ContentType string
	ModTime     time.Time
	// Package is true for package files (content never changes under the
	// path while it exists).
	Package bool
	// Generation is the generation the object was found in.
	Generation int64
	// Parts are the blobs whose concatenation the object is; empty when
	// it is the single blob Digest.
	Parts []string
	// Data holds the bytes of a small file derived from a package's
	// fragments (format.Sidecars); Digest is their SHA-256.
	Data []byte
}

// views holds each repository's retained generations in memory for the
// read path; package files are looked up in the metadata store and cached.
type views struct {
	meta meta.Store
	mu   sync.RWMutex
	m    map[string]*view
	// changes counts drops and publishes (under mu): a view read from the
	// store is kept only if nothing changed while it was read.
	changes uint64
	// beforeLock, in tests, runs in publishedGen between reading the view
	// and taking the lock to replace it.
	beforeLock func()
}

type view struct {
	repo meta.Repo
	// gens are the retained generations, newest (current) first.
	gens []*genView
}

type genView struct {
	number  int64
	seq     int64
	created time.Time

	mu    sync.Mutex
	files map[string]meta.GenFile // nil until loaded
}

// load returns the generation's files, reading them on first use. A failed
// read is not remembered: the next lookup tries again.
func (gv *genView) load(ctx context.Context, m meta.Store, repoID int64) (map[string]meta.GenFile, error) {
	gv.mu.Lock()
	defer gv.mu.Unlock()
	if gv.files != nil {
		return gv.files, nil
	}
	// Detached: one client giving up must not fail the load for others.
	g, err := m.GetGeneration(context.WithoutCancel(ctx), repoID, gv.number)
	if err != nil {
		return nil, err
	}
	gv.files = toGenView(g).files
	return gv.files, nil
}

func newViews(m meta.Store) *views { return &views{meta: m, m: map[string]*view{}} }

func (vs *views) drop(name string) {
	vs.mu.Lock()
	delete(vs.m, name)
	vs.changes++
	vs.mu.Unlock()
}

func toGenView(g *meta.Generation) *genView {
	gv := &genView{number: g.Number, seq: g.Seq, created: g.CreatedAt, files: make(map[string]meta.GenFile, len(g.Files))}
	for _, f := range g.Files {
		gv.files[f.Path] = f
	}
	return gv
}

// dropGenerations forgets pruned generations of a repository.
func (vs *views) dropGenerations(name string, numbers []int64, snaps map[int64]bool) {
	gone := make(map[int64]bool, len(numbers))
	for _, n := range numbers {
		gone[n] = true
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	old := vs.m[name]
	if old == nil {
		return
	}
	for n := range snapshotOnly(old, snaps) {
		gone[n] = true
	}
	v := &view{repo: old.repo}
	for _, gv := range old.gens {
		if !gone[gv.number] {
			v.gens = append(v.gens, gv)
		}
	}
	vs.m[name] = v
}

// publishedGen records that g is now the current generation of r. The
// retained generations are listed from the store only when the view is
// first built; later publishes prepend to the list (pruning removes from
// it), so a publish does not cost in proportion to the generations kept.
func (vs *views) publishedGen(ctx context.Context, r *meta.Repo, g *meta.Generation) {
	if g.RepoID != r.ID {
		return // a deleted repository's publisher, finishing late
	}
	vs.mu.RLock()
	old := vs.m[r.Name]
	vs.mu.RUnlock()
	var listed []meta.Generation
	fetched := false
	snaps := map[int64]bool{}
	if old == nil || old.repo.ID != r.ID {
		fetched = true
		var err error
		listed, err = vs.meta.ListGenerations(context.WithoutCancel(ctx), r.ID)
		var sns []meta.Snapshot
		if err == nil {
			sns, err = vs.meta.ListSnapshots(context.WithoutCancel(ctx), r.ID)
		}
		for _, sn := range sns {
			snaps[sn.Generation] = true
		}
		if err != nil {
			// Build the view on the next lookup instead of keeping one
			// that lacks the older generations.
			vs.drop(r.Name)
			return
		}
	}
	if vs.beforeLock != nil {
		vs.beforeLock()
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	old = vs.m[r.Name]
	if (old == nil || old.repo.ID != r.ID) && !fetched {
		// The view was dropped since it was read (a remote event): the
		// retained generations were not listed, and a view of g alone
		// would make the files of the previous generation, which a
		// client may have just read an index of, 404. The next lookup
		// builds it whole.
		return
	}
	v := &view{repo: *r, gens: []*genView{toGenView(g)}}
	if old != nil && old.repo.ID == r.ID {
		for _, gv := range old.gens {
			if gv.number != g.Number {
				v.gens = append(v.gens, gv)
			}
		}
	} else {
		for _, lg := range listed {
			if lg.Number != g.Number {
				// Files are loaded on first lookup.
				v.gens = append(v.gens, &genView{number: lg.Number, seq: lg.Seq, created: lg.CreatedAt})
			}
		}
	}
	vs.changes++
	sort.Slice(v.gens, func(i, j int) bool { return v.gens[i].number > v.gens[j].number })
	if only := snapshotOnly(v, snaps); len(only) > 0 {
		keep := v.gens[:0]
		for _, gv := range v.gens {
			if !only[gv.number] {
				keep = append(keep, gv)
			}
		}
		v.gens = keep
	}
	// Keep the file lists of the newest generations only; an older one is
	// read again if a slow client asks for one of its files.
	if i := loadedGenerations; i < len(v.gens) {
		gv := v.gens[i]
		v.gens[i] = &genView{number: gv.number, seq: gv.seq, created: gv.created}
	}
	vs.m[r.Name] = v
}

// snapshotOnly returns the generations of a view that are retained only
// because a snapshot names them: snapshot generations older than the
// oldest one the usual retention keeps. They are served under /REPO/@NAME/
// and must not stretch the window of generations the repository's own
// URLs serve from.
func snapshotOnly(v *view, snaps map[int64]bool) map[int64]bool {
	if v == nil || len(snaps) == 0 || len(v.gens) == 0 {
		return nil
	}
	oldest := v.gens[0].number
	for _, gv := range v.gens {
		if !snaps[gv.number] {
			oldest = min(oldest, gv.number)
		}
	}
	out := map[int64]bool{}
	for _, gv := range v.gens {
		if snaps[gv.number] && gv.number < oldest {
			out[gv.number] = true
		}
	}
	return out
}

// loadedGenerations is how many generations per repository keep their file
// lists in memory.
const loadedGenerations = 4

// get returns the view of a repository, loading it on first use.
func (vs *views) get(ctx context.Context, name string) (*view, error) {
	vs.mu.RLock()
	v, before := vs.m[name], vs.changes
	vs.mu.RUnlock()
	if v != nil {
		return v, nil
	}
	r, err := vs.meta.GetRepo(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrRepoNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	if r.CurrentGeneration == 0 {
		// A repository without generations (a proxy, or a hosted one
		// before its first publish) is kept too, so that each request
		// to it does not read the store; its first publish, a
		// configuration change and deletion replace or drop the view.
		v := &view{repo: *r}
		vs.mu.Lock()
		if vs.changes == before && vs.m[name] == nil {
			vs.m[name] = v
		}
		vs.mu.Unlock()
		return v, nil
	}
	g, err := vs.meta.GetGeneration(ctx, r.ID, r.CurrentGeneration)
	if err != nil {
		return nil, fmt.Errorf("load generation %d of %q: %w", r.CurrentGeneration, name, err)
	}
	vs.publishedGen(ctx, r, g)
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	return vs.m[name], nil
}

// ErrObjectNotFound means the repository serves nothing at that path.
var ErrObjectNotFound = errors.New("not found")

// LookupIndex finds p among the files of a repository's current
// generation (its indexes and pointer files), as Lookup would find it
// there, without looking further (packages, older generations): false if
// p is not one of them.
func (s *Service) LookupIndex(ctx context.Context, repoName, p string) (*Object, bool) {
	obj, _, err := s.lookupCurrent(ctx, repoName, p)
	return obj, err == nil && obj != nil
}

// lookupCurrent returns the object at p if it is a file of the current
// generation (nil if not) and the repository's view.
func (s *Service) lookupCurrent(ctx context.Context, repoName, p string) (*Object, *view, error) {
	v, err := s.views.get(ctx, repoName)
	if err != nil {
		return nil, nil, err
	}
	if len(v.gens) == 0 {
		return nil, v, ErrObjectNotFound
	}
	cur := v.gens[0]
	files, err := cur.load(ctx, s.meta, v.repo.ID)
	if err != nil {
		return nil, nil, err
	}
	if f, ok := files[p]; ok {
		return &Object{Path: p, Digest: f.Digest, Size: f.Size, ContentType: f.ContentType, ModTime: cur.created, Generation: cur.number, Parts: f.Parts}, v, nil
	}
	return nil, v, nil
}

// Lookup finds what a repository serves at p: a file of its current
// generation, a package, or a file of a retained older generation (so a
// client that read an index a moment ago still gets every file it names).
// It costs a few indexed queries at most, however many generations are
// retained.
func (s *Service) Lookup(ctx context.Context, repoName, p string) (*Object, error) {
	obj, v, err := s.lookupCurrent(ctx, repoName, p)
	if obj != nil || err != nil {
		return obj, err
	}
	cur := v.gens[0]
	// A package in the current generation or, failing that, in any
	// retained one.
	oldest := v.gens[len(v.gens)-1]
	pk, err := s.packageAt(ctx, v, p, oldest.seq, cur.seq)
	if err == nil {
		return &Object{Path: p, Digest: pk.Digest, Size: pk.Size, ModTime: pk.UploadedAt, Package: true, Generation: cur.number}, nil
	}
	if !errors.Is(err, meta.ErrNotFound) {
		return nil, err
	}
	if obj, err := s.sidecar(ctx, v, p, oldest.seq, cur.seq); obj != nil || err != nil {
		return obj, err
	}
	if len(v.gens) == 1 {
		return nil, ErrObjectNotFound
	}
	f, number, err := s.meta.GenerationFile(ctx, v.repo.ID, p)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && number < oldest.number) {
		return nil, ErrObjectNotFound
	}
	if err != nil {
		return nil, err
	}
	created := cur.created
	for _, gv := range v.gens {
		if gv.number == number {
			created = gv.created
		}
	}
	return &Object{Path: p, Digest: f.Digest, Size: f.Size, ContentType: f.ContentType, ModTime: created, Generation: number, Parts: f.Parts}, nil
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name    string
	Dir     bool
	Size    int64
	ModTime time.Time
}

// List returns the entries of directory dir ("" for the root) in the
// current generation, sorted by name; ErrObjectNotFound if it is empty.
func (s *Service) List(ctx context.Context, repoName, dir string) ([]DirEntry, error) {
	v, err := s.views.get(ctx, repoName)
	if err != nil {
		return nil, err
	}
	dir = strings.Trim(dir, "/")
	seen := map[string]*DirEntry{}
	add := func(p string, size int64, mt time.Time) {
		rel := p
		if dir != "" {
			if !strings.HasPrefix(p, dir+"/") {
				return
			}
			rel = p[len(dir)+1:]
		}
		name, rest, isDir := strings.Cut(rel, "/")
		if _, ok := seen[name]; ok {
			return
		}
		e := &DirEntry{Name: name, Dir: isDir && rest != ""}
		if !e.Dir {
			e.Size, e.ModTime = size, mt
		}
		seen[name] = e
	}
	var seq int64
	if len(v.gens) > 0 {
		gv := v.gens[0]
		seq = gv.seq
		for _, f := range gv.files {
			add(f.Path, f.Size, gv.created)
		}
	}
	pkgs, err := s.meta.ListPackages(ctx, v.repo.ID, meta.PackageQuery{})
	if err != nil {
		return nil, err
	}
	for _, pk := range pkgs {
		if pk.AddedSeq <= seq {
			add(pk.Path, pk.Size, pk.UploadedAt)
		}
	}
	if len(seen) == 0 && dir != "" {
		return nil, ErrObjectNotFound
	}
	out := make([]DirEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// packageAt returns the package served at p between two sequence numbers,
// under its own path or an alias of the format's.
func (s *Service) packageAt(ctx context.Context, v *view, p string, from, to int64) (*meta.Package, error) {
	pk, err := s.meta.PackageByPath(ctx, v.repo.ID, p, from, to)
	if errors.Is(err, meta.ErrNotFound) {
		if al, ok := s.formats[v.repo.Format].(format.PackageAliaser); ok {
			if q, ok := al.PackageAlias(p); ok {
				pk, err = s.meta.PackageByPath(ctx, v.repo.ID, q, from, to)
			}
		}
	}
	return pk, err
}

// sidecar serves a file derived from a package's fragments (a pacman
// package's .sig), or nil if p names none.
func (s *Service) sidecar(ctx context.Context, v *view, p string, from, to int64) (*Object, error) {
	sc, ok := s.formats[v.repo.Format].(format.Sidecars)
	if !ok {
		return nil, nil
	}
	pkgPath, kind, ok := sc.Sidecar(p)
	if !ok {
		return nil, nil
	}
	pk, err := s.packageAt(ctx, v, pkgPath, from, to)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	frags, err := s.meta.Fragments(ctx, v.repo.ID, []int64{pk.ID})
	if err != nil {
		return nil, err
	}
	data := frags[pk.ID][kind]
	if len(data) == 0 {
		return nil, nil
	}
	sum := sha256.Sum256(data)
	return &Object{Path: p, Digest: hex.EncodeToString(sum[:]), Size: int64(len(data)), ModTime: pk.UploadedAt,
		Package: true, Generation: v.gens[0].number, Data: data}, nil
}
