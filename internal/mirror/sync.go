package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/upstream"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
	"github.com/packyard/packyard/internal/sign"
)

// syncer is one sync of one mirror.
type syncer struct {
	m      *Mirror
	repo   *meta.Repo
	st     repo.Settings
	exact  bool
	ver    *sign.Verifier
	bases  []string
	dbName string
	prog   *Progress
	// flusher makes lazily committed blobs durable (nil: the store
	// commits durably).
	flusher blob.Syncer
	// ready takes prepared packages to the recorder.
	ready chan prepared

	jobs chan job
	wg   sync.WaitGroup

	mu    sync.Mutex
	stats Stats
	// named holds the paths (and scopes) the upstream names, to find
	// what it dropped; files are the exact generation's index files.
	named map[string]bool
	files []meta.GenFile
	// storedParser is set when the format parses a downloaded package
	// from the digests computed while storing it (format.StoredParser).
	storedParser bool
	// empty is set when the mirror had no package when the sync began.
	empty bool
}

// job is one package file to copy.
type job struct {
	e upstream.Entry
	// rel is the file's path relative to the upstream base, to fetch it.
	rel string
	// path is where the mirror serves it ("" for the format's own path).
	path   string
	scope  string
	params format.UploadParams
}

func (m *Mirror) sync(ctx context.Context, r *meta.Repo, ru *run) (Stats, error) {
	st, err := repo.RepoSettings(r)
	if err != nil {
		return Stats{}, err
	}
	s := &syncer{m: m, repo: r, st: st, exact: st.Mode == repo.ModeExact, prog: ru.prog, named: map[string]bool{},
		bases: append([]string(nil), st.Upstreams...), dbName: st.DBName}
	if s.dbName == "" {
		s.dbName = r.Name
	}
	if f, ok := m.opts.Blobs.(blob.Syncer); ok {
		s.flusher = f
	}
	if f, ok := m.opts.Repos.Format(r.Format); ok {
		_, s.storedParser = f.(format.StoredParser)
	}
	if len(st.UpstreamKeys) > 0 {
		keys := make([][]byte, len(st.UpstreamKeys))
		for i, k := range st.UpstreamKeys {
			keys[i] = []byte(k)
		}
		if s.ver, err = sign.NewVerifier(keys...); err != nil {
			return Stats{}, fmt.Errorf("upstream_keys: %w", err)
		}
	}
	for _, ml := range []struct {
		u        string
		metalink bool
	}{{st.Metalink, true}, {st.Mirrorlist, false}} {
		if ml.u == "" {
			continue
		}
		more, err := s.resolveMirrors(ctx, ml.u, ml.metalink)
		if err != nil && len(s.bases) == 0 {
			return Stats{}, err
		}
		s.bases = append(s.bases, more...)
	}
	if st.Retain == 0 {
		// A mirror without live packages has nothing to look up per
		// package (with retention, it may hold retired ones).
		live, err := m.opts.Meta.ListPackages(ctx, r.ID, meta.PackageQuery{Limit: 1})
		if err != nil {
			return Stats{}, fmt.Errorf("list the mirror's packages: %w", err)
		}
		s.empty = len(live) == 0
	}
	err = s.copyAll(ctx)
	s.stats.DownloadedBytes = s.prog.Bytes.Load()
	if err != nil {
		return s.stats, err
	}
	if s.stats.Failed > 0 {
		return s.stats, fmt.Errorf("%d of %d packages could not be copied; nothing was published (first: %s)", s.stats.Failed, s.stats.Packages, s.stats.Failures[0])
	}
	s.prog.setPhase("publishing")
	if err := s.dropped(ctx); err != nil {
		return s.stats, err
	}
	seq, err := m.opts.Meta.LastSeq(ctx)
	if err != nil {
		return s.stats, err
	}
	rec := &ru.rec
	if err := s.flush(ctx); err != nil {
		return s.stats, err
	}
	if s.exact {
		gen, err := m.opts.Repos.PublishFiles(ctx, r.Name, s.files)
		if err != nil {
			return s.stats, err
		}
		rec.Seq, rec.Generation = seq, gen
		return s.stats, nil
	}
	// The record of a good sync is what lets the publisher include its
	// packages: write it first, then wait for the generation.
	rec.Status, rec.Seq = meta.SyncOK, seq
	if err := m.opts.Meta.PutSync(ctx, rec); err != nil {
		return s.stats, fmt.Errorf("record the sync: %w", err)
	}
	gen, err := m.opts.Repos.PublishMirror(ctx, r, seq)
	if err != nil {
		return s.stats, fmt.Errorf("publish: %w", err)
	}
	rec.Generation = gen
	return s.stats, nil
}

// copyAll lists the upstream's packages (by format) and copies them with
// a bounded number of workers.
func (s *syncer) copyAll(ctx context.Context) error {
	n := s.st.Concurrency
	if n == 0 {
		n = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.jobs = make(chan job, n)
	s.ready = make(chan prepared, maxRecordBatch)
	recorded := make(chan struct{})
	go s.recorder(ctx, recorded)
	for range n {
		s.wg.Add(1)
		go s.worker(ctx)
	}
	s.prog.setPhase("metadata")
	var err error
	switch s.repo.Format {
	case meta.FormatRPM:
		err = s.rpm(ctx)
	case meta.FormatDeb:
		err = s.deb(ctx)
	case meta.FormatArch:
		err = s.arch(ctx)
	default:
		err = fmt.Errorf("format %q cannot be mirrored", s.repo.Format)
	}
	close(s.jobs)
	if err != nil {
		cancel()
	}
	s.wg.Wait()
	close(s.ready)
	<-recorded
	s.prog.Listed.Store(true)
	return err
}

// want reports whether a package passes the include/exclude patterns.
func (s *syncer) want(name string) bool {
	for _, p := range s.st.Exclude {
		if ok, _ := path.Match(p, name); ok {
			return false
		}
	}
	if len(s.st.Include) == 0 {
		return true
	}
	for _, p := range s.st.Include {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// queue hands one package to the workers.
func (s *syncer) queue(ctx context.Context, j job) error {
	if !s.want(j.e.Name) {
		return nil
	}
	key := j.scope + "\x00" + j.rel
	s.mu.Lock()
	dup := s.named[key]
	s.named[key] = true
	if !dup {
		s.stats.Packages++
	}
	s.mu.Unlock()
	if dup {
		return nil
	}
	s.prog.Packages.Add(1)
	select {
	case s.jobs <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *syncer) worker(ctx context.Context) {
	defer s.wg.Done()
	for j := range s.jobs {
		err := s.copy(ctx, j)
		s.prog.Done.Add(1)
		if err != nil && ctx.Err() == nil {
			s.failed(err)
		}
	}
}

// copy records one package: nothing to do when the mirror has it; else
// from the blob store when another repository stored the same bytes; else
// downloaded and checked.
func (s *syncer) copy(ctx context.Context, j job) error {
	servedAt := j.path
	if servedAt == "" {
		servedAt = j.rel
	}
	var have *meta.Package
	err := meta.ErrNotFound
	if !s.empty {
		have, err = s.m.opts.Repos.PackageAt(ctx, s.repo, servedAt, s.st.Retain > 0)
	}
	switch {
	case err == nil && have.Digest == j.e.SHA256 && (j.scope == "" || have.Scope == j.scope):
		// Present, or retired by the retention policy (RemovedSeq set):
		// not copied again either way.
		s.count(func(st *Stats) { st.Present++ })
		return nil
	case err != nil && !errors.Is(err, meta.ErrNotFound):
		return fmt.Errorf("%s: %w", j.rel, err)
	}
	var dg *digester
	if s.storedParser {
		dg = newDigester()
	}
	n, err := s.fetchBlob(ctx, j.rel, j.e.SHA256, j.e.Size, dg)
	if err != nil {
		return err
	}
	if len(j.e.Signature) > 0 && s.ver != nil {
		if err := s.verifyPackage(ctx, j); err != nil {
			return err
		}
	}
	size := j.e.Size
	if size < 0 {
		info, err := s.m.opts.Blobs.Stat(ctx, blob.Digest(j.e.SHA256))
		if err != nil {
			return fmt.Errorf("%s: %w", j.rel, err)
		}
		size = info.Size
	}
	// An empty union mirror has nothing to look a package up in; a
	// duplicate within the sync is refused when it is recorded.
	st := repo.Stored{Repo: s.repo, Filename: path.Base(j.rel), Digest: j.e.SHA256, Size: size, Path: j.path, Params: j.params,
		NoLookup: s.empty && !s.exact}
	if dg != nil && n > 0 {
		// Downloaded (not found in the store): the digests are the
		// stored bytes', and the format need not read them again.
		st.Sums = dg.sums(j.e.SHA256)
	}
	prep, _, err := s.m.opts.Repos.PrepareStored(ctx, st)
	var conflict *repo.ConflictError
	if errors.As(err, &conflict) {
		if !s.exact {
			s.conflict(j, conflict)
			return nil
		}
		// An exact mirror serves what the upstream names.
		if err := s.m.opts.Repos.RemoveMirrored(ctx, s.repo, conflict.Existing.ID); err != nil {
			return fmt.Errorf("%s: replace the changed file: %w", j.rel, err)
		}
		prep, _, err = s.m.opts.Repos.PrepareStored(ctx, st)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", j.rel, err)
	}
	if prep == nil { // recorded already
		s.count(func(st *Stats) { st.Present++ })
		return nil
	}
	select {
	case s.ready <- prepared{p: prep, j: j, reused: n == 0}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// conflict counts an upstream file that changed under a name the mirror
// has: a union mirror keeps the copy it has.
func (s *syncer) conflict(j job, c *repo.ConflictError) {
	s.count(func(st *Stats) { st.Conflicts++ })
	s.m.opts.Log.Warn("mirror: upstream file changed under the same name; the copy already mirrored is kept",
		"repo", s.repo.Name, "path", j.rel, "kept_sha256", c.Existing.Digest, "upstream_sha256", j.e.SHA256)
}

// failed counts a package that could not be copied.
func (s *syncer) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Failed++
	if len(s.stats.Failures) < maxFailures {
		s.stats.Failures = append(s.stats.Failures, err.Error())
	}
}

func (s *syncer) count(fn func(*Stats)) {
	s.mu.Lock()
	fn(&s.stats)
	s.mu.Unlock()
}

// verifyPackage checks a package's detached signature (pacman's
// %PGPSIG%) against the upstream keyring.
func (s *syncer) verifyPackage(ctx context.Context, j job) error {
	rd, err := s.m.opts.Blobs.Open(ctx, blob.Digest(j.e.SHA256))
	if err != nil {
		return fmt.Errorf("%s: %w", j.rel, err)
	}
	defer rd.Close()
	if _, err := s.ver.VerifyDetachedReader(rd, j.e.Signature); err != nil {
		return fmt.Errorf("%s: package signature: %w", j.rel, err)
	}
	return nil
}

// storeIndex downloads an index file the signed pointer names and adds
// it to the exact generation's files (when the mirror is exact).
func (s *syncer) storeIndex(ctx context.Context, rel, servedAt string, f upstream.IndexFile) error {
	if _, err := s.fetchBlob(ctx, rel, f.SHA256, f.Size, nil); err != nil {
		return err
	}
	if s.exact {
		size := f.Size
		if size < 0 {
			info, err := s.m.opts.Blobs.Stat(ctx, blob.Digest(f.SHA256))
			if err != nil {
				return err
			}
			size = info.Size
		}
		s.addFile(servedAt, f.SHA256, size)
	}
	return nil
}

// storeBytes stores a pointer file (already verified) for an exact
// generation.
func (s *syncer) storeBytes(ctx context.Context, servedAt string, b []byte) error {
	if !s.exact {
		return nil
	}
	info, err := blob.Put(ctx, s.m.opts.Blobs, b)
	if err != nil {
		return fmt.Errorf("store %s: %w", servedAt, err)
	}
	s.addFile(servedAt, string(info.Digest), info.Size)
	return nil
}

func (s *syncer) addFile(p, digest string, size int64) {
	s.mu.Lock()
	s.files = append(s.files, meta.GenFile{Path: p, Digest: digest, Size: size, ContentType: contentType(p)})
	s.mu.Unlock()
}

// scanIndex opens a stored index, decompressed, and scans it.
func (s *syncer) scanIndex(ctx context.Context, digest string, scan func(io.Reader) error) error {
	rd, err := s.m.opts.Blobs.Open(ctx, blob.Digest(digest))
	if err != nil {
		return err
	}
	defer rd.Close()
	z, err := upstream.Decompress(rd)
	if err != nil {
		return err
	}
	defer z.Close()
	return scan(z)
}

// dropped counts (union) or removes (exact) the mirror's packages that
// the upstream no longer names, and applies the retention policy.
func (s *syncer) dropped(ctx context.Context) error {
	type group struct{ scope, name, arch string }
	versions := map[group][]meta.Package{}
	var after int64
	for {
		page, err := s.m.opts.Meta.ListPackages(ctx, s.repo.ID, meta.PackageQuery{AfterID: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("list the mirror's packages: %w", err)
		}
		for _, p := range page {
			after = p.ID
			if s.named[s.key(p)] {
				if s.st.Retain > 0 {
					g := group{p.Scope, p.Name, p.Arch}
					versions[g] = append(versions[g], p)
				}
				continue
			}
			s.stats.Dropped++
			if s.exact {
				if err := s.m.opts.Repos.RemoveMirrored(ctx, s.repo, p.ID); err != nil {
					return fmt.Errorf("remove %s (dropped upstream): %w", p.Path, err)
				}
				s.stats.Removed++
			} else if s.st.Retain > 0 {
				g := group{p.Scope, p.Name, p.Arch}
				versions[g] = append(versions[g], p)
			}
		}
		if len(page) < 1000 {
			break
		}
	}
	if s.st.Retain == 0 {
		return nil
	}
	f, _ := s.m.opts.Repos.Format(s.repo.Format)
	for _, ps := range versions {
		if len(ps) <= s.st.Retain {
			continue
		}
		sort.Slice(ps, func(i, j int) bool {
			a := format.Identity{Name: ps[i].Name, Epoch: ps[i].Epoch, Version: ps[i].Version, Release: ps[i].Release, Arch: ps[i].Arch}
			b := format.Identity{Name: ps[j].Name, Epoch: ps[j].Epoch, Version: ps[j].Version, Release: ps[j].Release, Arch: ps[j].Arch}
			return f.Compare(a, b) > 0
		})
		for _, p := range ps[s.st.Retain:] {
			if err := s.m.opts.Repos.RemoveMirrored(ctx, s.repo, p.ID); err != nil {
				return fmt.Errorf("retire %s: %w", p.Path, err)
			}
			s.stats.Retired++
		}
	}
	return nil
}

// key is the named-set key of a recorded package: its scope and where
// the upstream serves it.
func (s *syncer) key(p meta.Package) string {
	rel := p.Path
	if s.repo.Format == meta.FormatArch {
		// Recorded under the format's path (any/… for "any" packages);
		// the upstream lists it under each architecture's directory.
		for _, a := range s.st.Architectures {
			if s.named["\x00"+a+"/"+path.Base(p.Path)] {
				return "\x00" + a + "/" + path.Base(p.Path)
			}
		}
	}
	return p.Scope + "\x00" + rel
}

func contentType(p string) string {
	switch {
	case strings.HasSuffix(p, ".xml"):
		return "application/xml"
	case strings.HasSuffix(p, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(p, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(p, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(p, ".asc"), strings.HasSuffix(p, ".gpg"), strings.HasSuffix(p, ".sig"):
		return "application/pgp-signature"
	case strings.HasSuffix(p, ".db"), strings.HasSuffix(p, ".files"):
		return "application/octet-stream"
	}
	return "text/plain; charset=utf-8"
}
