package repo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// MirrorSettings are the settings of a mirror repository (docs/mirror.md).
// Upstreams and Mode are shared with proxies (ProxySettings).
type MirrorSettings struct {
	// UpstreamKeys are armored public keys; upstream metadata must be
	// signed by one of them.
	UpstreamKeys []string `json:"upstream_keys,omitempty"`
	// UpstreamUnsigned accepts upstream metadata without a signature
	// (digests are still checked); off unless set explicitly.
	UpstreamUnsigned bool `json:"upstream_unsigned,omitempty"`
	// Metalink and Mirrorlist (rpm) are fetched at each sync for more
	// upstream base URLs, tried after Upstreams.
	Metalink   string `json:"metalink,omitempty"`
	Mirrorlist string `json:"mirrorlist,omitempty"`
	// Distributions and Components are the APT suites and components
	// copied (components: every one the Release file lists when empty).
	Distributions []string `json:"distributions,omitempty"`
	Components    []string `json:"components,omitempty"`
	// DBName is the upstream pacman repository's name (NAME.db); the
	// mirror's own name when empty.
	DBName string `json:"db_name,omitempty"`
	// Include and Exclude are package-name patterns (path.Match syntax):
	// a package is copied when it matches an Include pattern (or there is
	// none) and no Exclude pattern.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// SyncInterval is how often the server syncs the mirror ("6h"); no
	// scheduled sync when empty.
	SyncInterval string `json:"sync_interval,omitempty"`
	// Retain keeps only the newest N versions of each package (by name,
	// architecture and scope) after a sync; 0 keeps everything.
	Retain int `json:"retain,omitempty"`
	// Concurrency bounds the parallel downloads of a sync (default 8).
	Concurrency int `json:"concurrency,omitempty"`
}

// ModeExact serves a mirror's upstream metadata byte for byte.
const ModeExact = "exact"

var dbNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// checkMirror checks the settings of a mirror repository.
func checkMirror(formatName string, st Settings) error {
	if len(st.Upstreams) == 0 && st.Metalink == "" && st.Mirrorlist == "" {
		return fmt.Errorf("%w: a mirror repository needs at least one upstream URL (--upstream https://mirror.example/fedora/)", ErrInvalidRepo)
	}
	if err := checkURLs("upstreams", st.Upstreams, formatName == meta.FormatArch); err != nil {
		return err
	}
	for key, u := range map[string]string{"metalink": st.Metalink, "mirrorlist": st.Mirrorlist} {
		if u == "" {
			continue
		}
		if formatName != meta.FormatRPM {
			return fmt.Errorf("%w: %s is for rpm mirrors", ErrInvalidRepo, key)
		}
		if err := checkURL(key, u, true, false); err != nil {
			return err
		}
	}
	if len(st.Peers) > 0 || st.MaxAge != "" || st.UpstreamTimeout != "" || st.MaxCacheSize != "" {
		return fmt.Errorf("%w: peers, max_age, upstream_timeout and max_cache_size are settings of proxy repositories", ErrInvalidRepo)
	}
	if len(st.UpstreamKeys) == 0 && !st.UpstreamUnsigned {
		return fmt.Errorf("%w: a mirror checks its upstream's signatures: give the upstream's public key (--upstream-key FILE), or accept unsigned upstream metadata explicitly (--upstream-unsigned)", ErrInvalidRepo)
	}
	switch st.Mode {
	case "", ModeUnion:
		if len(st.KeyNames()) == 0 {
			return fmt.Errorf("%w: a union mirror signs the metadata it renders: name a signing key (--key) or give the server a default key; mode exact serves the upstream's signatures instead", ErrInvalidRepo)
		}
	case ModeExact:
		if len(st.KeyNames()) > 0 {
			return fmt.Errorf("%w: a mirror in mode exact serves its upstream's signatures and signs nothing: remove keys, or use mode union", ErrInvalidRepo)
		}
		if st.Retain > 0 {
			return fmt.Errorf("%w: retain applies to union mirrors; an exact mirror serves what upstream names", ErrInvalidRepo)
		}
	default:
		return fmt.Errorf("%w: mode %q of a mirror must be union or exact", ErrInvalidRepo, st.Mode)
	}
	switch formatName {
	case meta.FormatDeb:
		if len(st.Distributions) == 0 {
			return fmt.Errorf("%w: an APT mirror needs the distributions to copy (--distribution bookworm)", ErrInvalidRepo)
		}
	case meta.FormatArch:
		if len(st.Architectures) == 0 {
			return fmt.Errorf("%w: a pacman mirror needs the architectures to copy (--architectures x86_64)", ErrInvalidRepo)
		}
		if st.DBName != "" && !dbNameRE.MatchString(st.DBName) {
			return fmt.Errorf("%w: db_name %q is not a pacman repository name", ErrInvalidRepo, st.DBName)
		}
	}
	for _, list := range [][]string{st.Distributions, st.Components} {
		for _, n := range list {
			if !scopeNameRE.MatchString(n) || n == "by-hash" {
				return fmt.Errorf("%w: %q is not a distribution or component name", ErrInvalidRepo, n)
			}
		}
	}
	for _, p := range append(append([]string{}, st.Include...), st.Exclude...) {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("%w: package-name pattern %q is malformed", ErrInvalidRepo, p)
		}
	}
	if st.SyncInterval != "" {
		if d, err := time.ParseDuration(st.SyncInterval); err != nil || d < time.Minute {
			return fmt.Errorf("%w: sync_interval %q must be a duration of at least 1m, such as 6h", ErrInvalidRepo, st.SyncInterval)
		}
	}
	if st.Retain < 0 || st.Concurrency < 0 || st.Concurrency > 64 {
		return fmt.Errorf("%w: retain must be ≥ 0 and concurrency between 1 and 64", ErrInvalidRepo)
	}
	return nil
}

// Stored names a package file already in the blob store that a mirror
// records in a repository.
type Stored struct {
	Repo *meta.Repo
	// Filename is the upstream file name (for messages and format checks).
	Filename string
	Digest   string
	Size     int64
	// Path overrides the format's path (the upstream's location), "" to
	// keep it.
	Path   string
	Params format.UploadParams
	// Sums, when set, are the file's digests computed while it was
	// stored (Digest among them): a format that can use them parses
	// without reading the whole file again (format.StoredParser).
	Sums *format.Digests
	// NoLookup skips looking for a live package with the file's identity
	// (the caller knows the repository held none when its sync began);
	// RecordPrepared still refuses a conflicting one.
	NoLookup bool
}

// PrepareStored parses a package file already in the blob store for a
// mirror repository and renders its fragments. When the repository has a
// package with its identity it returns that package's Result (or a
// ConflictError) and no Prepared. Nothing is recorded: RecordPrepared
// does that, once the blob is durable.
func (s *Service) PrepareStored(ctx context.Context, st Stored) (*Prepared, *Result, error) {
	f, ok := s.formats[st.Repo.Format]
	if !ok {
		return nil, nil, fmt.Errorf("%w: format %q is not available", ErrInvalidRepo, st.Repo.Format)
	}
	rd, err := s.blobs.Open(ctx, blob.Digest(st.Digest))
	if err != nil {
		return nil, nil, fmt.Errorf("open stored %s: %w", st.Filename, err)
	}
	defer rd.Close()
	var pkg *format.Package
	if sp, ok := f.(format.StoredParser); ok && st.Sums != nil && st.Sums.SHA256 == st.Digest {
		pkg, err = sp.ParseStored(rd, st.Size, st.Filename, st.Params, *st.Sums)
	} else {
		pkg, err = f.Parse(rd, st.Filename, st.Params)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", st.Filename, err)
	}
	if st.Path != "" {
		pkg.Path = st.Path
	}
	return s.prepare(ctx, st.Repo, f, pkg, st.Digest, st.Size, Upload{Repo: st.Repo.Name, Filename: st.Filename, Params: st.Params, Uploader: "mirror", noLookup: st.NoLookup})
}

// RecordPrepared adds a prepared package's row (its blob must be durable:
// the caller flushed the store). Nothing is published: a mirror publishes
// when its sync succeeds.
func (s *Service) RecordPrepared(ctx context.Context, p *Prepared) (*Result, error) {
	res, err := s.add(ctx, p, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.filename, err)
	}
	return res, nil
}

// RemoveMirrored removes a package from a mirror during a sync; the
// removal is published with the sync's generation.
func (s *Service) RemoveMirrored(ctx context.Context, r *meta.Repo, id int64) error {
	if _, err := s.meta.RemovePackage(ctx, r.ID, id); err != nil {
		return fmt.Errorf("remove package %d from %q: %w", id, r.Name, err)
	}
	s.feed.bump()
	return nil
}

// PackageAt returns the repository's live package served at path (or at
// the format's alias of it), or meta.ErrNotFound; with ever, also one
// removed since (the newest).
func (s *Service) PackageAt(ctx context.Context, r *meta.Repo, p string, ever bool) (*meta.Package, error) {
	seq, err := s.meta.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	from := seq
	if ever {
		from = 0
	}
	return s.packageAt(ctx, &view{repo: *r}, p, from, seq)
}

// PublishMirror makes a union mirror publish every package recorded up
// to seq (which the caller recorded as its last good sync) and returns
// the generation.
func (s *Service) PublishMirror(ctx context.Context, r *meta.Repo, seq int64) (int64, error) {
	return s.publisher(r).waitVisible(ctx, seq)
}

// PublishFiles publishes a generation of an exact mirror: the upstream's
// index files as given, and the repository's live packages.
func (s *Service) PublishFiles(ctx context.Context, name string, files []meta.GenFile) (int64, error) {
	r, err := s.meta.GetRepo(ctx, name)
	if err != nil {
		return 0, err
	}
	if l, ok := s.meta.(meta.PublishLocker); ok {
		unlock, err := l.LockPublish(ctx, r.ID)
		if err != nil {
			return 0, fmt.Errorf("take the publishing lock: %w", err)
		}
		defer unlock()
		if r, err = s.meta.GetRepo(ctx, name); err != nil {
			return 0, err
		}
	}
	upTo, err := s.meta.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	g := &meta.Generation{RepoID: r.ID, Seq: upTo, Files: files}
	if _, err := s.meta.Publish(ctx, g, r.CurrentGeneration); err != nil {
		return 0, fmt.Errorf("publish generation: %w", err)
	}
	s.feed.bump()
	if r, err := s.meta.GetRepo(ctx, name); err == nil {
		s.views.publishedGen(ctx, r, g)
	}
	return g.Number, nil
}

// mirrorGate returns the sequence up to which a mirror's packages may be
// published (its last good sync's), and whether the publisher renders
// its metadata at all (exact mirrors publish the upstream's).
func (s *Service) mirrorGate(ctx context.Context, r *meta.Repo) (int64, bool, error) {
	st, err := parseSettings(r.Config)
	if err != nil {
		return 0, false, err
	}
	if st.Mode == ModeExact {
		return 0, false, nil
	}
	last, err := s.meta.LastGoodSync(ctx, r.ID)
	if errors.Is(err, meta.ErrNotFound) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read the last sync: %w", err)
	}
	return last.Seq, true, nil
}

// checkURLs checks a list of upstream or peer URLs.
func checkURLs(key string, urls []string, vars bool) error {
	seen := map[string]bool{}
	for _, u := range urls {
		if err := checkURL(key, u, false, vars); err != nil {
			return err
		}
		if seen[strings.TrimSuffix(u, "/")] {
			return fmt.Errorf("%w: %s: %q is listed twice", ErrInvalidRepo, key, u)
		}
		seen[strings.TrimSuffix(u, "/")] = true
	}
	return nil
}
