package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/sign"
)

// Settings is the part of a repository's configuration (meta.Repo.Config,
// a JSON object) that the service reads. Other keys are kept as they are.
type Settings struct {
	// Keys names the signing keys, in signature order: one, or two while a
	// key is rotated. Absent means the server's default key at creation;
	// an empty list publishes unsigned metadata.
	Keys *[]string `json:"keys,omitempty"`
	// Architectures are indexed even without packages of their own (APT).
	Architectures []string `json:"architectures,omitempty"`
	// Origin and Label are written into APT Release files.
	Origin string `json:"origin,omitempty"`
	Label  string `json:"label,omitempty"`
	// ValidFor adds Valid-Until to APT Release files ("168h").
	ValidFor string `json:"valid_for,omitempty"`

	// WatchDir is the repository's drop folder: an absolute directory
	// whose package files the server imports (internal/watch); "" for
	// none. No two repositories share one, nor nest one in another.
	WatchDir string `json:"watch_dir,omitempty"`
	// WatchKeepImported moves imported files to <watch_dir>/imported/
	// instead of deleting them.
	WatchKeepImported bool `json:"watch_keep_imported,omitempty"`
	// DefaultDistribution places APT packages dropped directly into the
	// watch directory; DefaultComponent places those dropped there or into
	// a <distribution>/ folder ("main" when empty).
	DefaultDistribution string `json:"default_distribution,omitempty"`
	DefaultComponent    string `json:"default_component,omitempty"`

	ProxySettings
	MirrorSettings
}

// ProxySettings are the settings of a proxy repository (docs/proxy.md).
type ProxySettings struct {
	// Upstreams are the base URLs the proxy fetches from, tried in order.
	Upstreams []string `json:"upstreams,omitempty"`
	// Peers are other packyard nodes (base URLs) asked first, cache-only,
	// for the same repository name.
	Peers []string `json:"peers,omitempty"`
	// MaxAge is how long a pointer file (repomd.xml, InRelease, NAME.db)
	// is served before it is revalidated upstream ("5m" when empty).
	MaxAge string `json:"max_age,omitempty"`
	// UpstreamTimeout bounds connecting to an upstream and waiting for its
	// response headers, and each pause in a body ("30s" when empty).
	UpstreamTimeout string `json:"upstream_timeout,omitempty"`
	// Mode is "passthrough" (the default): upstream metadata is served
	// verbatim; or "union": upstream metadata merged with every
	// package the cache ever stored, signed with the repository's keys.
	Mode string `json:"mode,omitempty"`
	// MaxCacheSize caps the bytes of cached package files ("50G"; empty
	// for no cap): past it the least recently used packages are evicted.
	MaxCacheSize string `json:"max_cache_size,omitempty"`
}

// ParseSize reads a size in bytes with an optional binary suffix (K, M,
// G, T; "50G").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	if len(t) > 1 && t[len(t)-1] == 'I' { // KiB, MiB, …
		t = t[:len(t)-1]
	}
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = strings.TrimSpace(t[:n-1])
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 500M or 50G", s)
	}
	return v * mult, nil
}

// Proxy modes.
const (
	ModePassthrough = "passthrough"
	ModeUnion       = "union"
)

// checkKind checks the settings that depend on a repository's kind (and
// format).
func checkKind(kind, format string, st Settings) error {
	if kind == meta.KindMirror {
		return checkMirror(format, st)
	}
	m := st.MirrorSettings
	if kind != meta.KindMirror && (len(m.UpstreamKeys) > 0 || m.UpstreamUnsigned || m.Metalink != "" || m.Mirrorlist != "" || len(m.Distributions) > 0 ||
		len(m.Components) > 0 || m.DBName != "" || len(m.Include) > 0 || len(m.Exclude) > 0 || m.SyncInterval != "" || m.Retain != 0 || m.Concurrency != 0) {
		return fmt.Errorf("%w: upstream_keys, distributions, components, db_name, include, exclude, sync_interval, retain and concurrency are settings of mirror repositories (create one with --kind mirror)", ErrInvalidRepo)
	}
	if kind != meta.KindProxy {
		if len(st.Upstreams) > 0 || len(st.Peers) > 0 || st.MaxAge != "" || st.Mode != "" || st.UpstreamTimeout != "" || st.MaxCacheSize != "" {
			return fmt.Errorf("%w: upstreams, peers, max_age, upstream_timeout, mode and max_cache_size are settings of proxy and mirror repositories (create one with --kind proxy or --kind mirror)", ErrInvalidRepo)
		}
		return nil
	}
	if len(st.Upstreams) == 0 {
		return fmt.Errorf("%w: a proxy repository needs at least one upstream URL (--upstream https://mirror.example/fedora/)", ErrInvalidRepo)
	}
	if err := checkURLs("upstreams", st.Upstreams, false); err != nil {
		return err
	}
	if err := checkURLs("peers", st.Peers, false); err != nil {
		return err
	}
	for key, v := range map[string]string{"max_age": st.MaxAge, "upstream_timeout": st.UpstreamTimeout} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return fmt.Errorf("%w: %s %q must be a duration such as 5m or 30s", ErrInvalidRepo, key, v)
		}
	}
	if st.MaxCacheSize != "" {
		if _, err := ParseSize(st.MaxCacheSize); err != nil {
			return fmt.Errorf("%w: max_cache_size: %v", ErrInvalidRepo, err)
		}
	}
	switch st.Mode {
	case "", ModePassthrough:
	case ModeUnion:
		if len(st.KeyNames()) == 0 {
			return fmt.Errorf("%w: mode union re-signs the merged metadata: name a signing key (--key) or give the server a default key", ErrInvalidRepo)
		}
	default:
		return fmt.Errorf("%w: mode %q must be passthrough or union", ErrInvalidRepo, st.Mode)
	}
	if st.Mode != ModeUnion && len(st.KeyNames()) > 0 {
		return fmt.Errorf("%w: a passthrough proxy serves its upstream's signatures and signs nothing: remove keys, or use mode union", ErrInvalidRepo)
	}
	return nil
}

// checkURL checks one upstream URL: http or https, with a host, and no
// credentials or fragment (nor a query unless allowed: metalinks have
// one). vars allows pacman's $arch and $repo in the path.
func checkURL(key, u string, query, vars bool) error {
	pu, err := url.Parse(u)
	bad := err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || (pu.RawQuery != "" && !query) || pu.Fragment != "" || pu.User != nil
	if err == nil && !vars && strings.Contains(pu.Path, "$") {
		bad = true
	}
	if bad {
		return fmt.Errorf("%w: %s: %q must be an http:// or https:// URL without query, fragment or credentials", ErrInvalidRepo, key, u)
	}
	return nil
}

// RepoSigner returns the signer and armored public keys of a repository
// (nil, nil for an unsigned one), for services that sign metadata of their
// own (union proxies).
func (s *Service) RepoSigner(r *meta.Repo) (format.Signer, []byte, error) {
	st, err := parseSettings(r.Config)
	if err != nil {
		return nil, nil, err
	}
	sg, asc, _, err := s.signing(st)
	return sg, asc, err
}

var archRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// scopeNameRE is what an APT distribution or component name may be (as
// the deb format checks it).
var scopeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// parseSettings reads and checks the settings of a configuration.
func parseSettings(cfg []byte) (Settings, error) {
	var st Settings
	if len(bytes.TrimSpace(cfg)) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(cfg, &st); err != nil {
		return st, fmt.Errorf("%w: configuration: %v", ErrInvalidRepo, err)
	}
	if st.Keys != nil {
		if len(*st.Keys) > 2 {
			return st, fmt.Errorf("%w: keys: a repository is signed by one key, or two during a rotation (got %d)", ErrInvalidRepo, len(*st.Keys))
		}
		if len(*st.Keys) == 2 && (*st.Keys)[0] == (*st.Keys)[1] {
			return st, fmt.Errorf("%w: keys: %q is named twice", ErrInvalidRepo, (*st.Keys)[0])
		}
	}
	for _, a := range st.Architectures {
		if !archRE.MatchString(a) || a == "all" {
			return st, fmt.Errorf("%w: architectures: %q is not an architecture name", ErrInvalidRepo, a)
		}
	}
	for name, v := range map[string]string{"origin": st.Origin, "label": st.Label} {
		if strings.ContainsAny(v, "\n\r") {
			return st, fmt.Errorf("%w: %s must be one line", ErrInvalidRepo, name)
		}
	}
	if st.ValidFor != "" {
		d, err := time.ParseDuration(st.ValidFor)
		if err != nil || d <= 0 {
			return st, fmt.Errorf("%w: valid_for %q must be a positive duration such as 168h", ErrInvalidRepo, st.ValidFor)
		}
	}
	if st.WatchDir != "" {
		if !filepath.IsAbs(st.WatchDir) || strings.ContainsAny(st.WatchDir, "\x00\n\r") {
			return st, fmt.Errorf("%w: watch_dir %q must be an absolute path on the server, such as /srv/drop/NAME", ErrInvalidRepo, st.WatchDir)
		}
		if filepath.Clean(st.WatchDir) == "/" {
			return st, fmt.Errorf("%w: watch_dir must not be the root directory", ErrInvalidRepo)
		}
	}
	for _, v := range []struct{ key, name string }{{"default_distribution", st.DefaultDistribution}, {"default_component", st.DefaultComponent}} {
		if v.name != "" && (!scopeNameRE.MatchString(v.name) || v.name == "by-hash") {
			return st, fmt.Errorf("%w: %s %q must be 1-64 letters, digits, '.', '_', '+', '-'", ErrInvalidRepo, v.key, v.name)
		}
	}
	return st, nil
}

// prepareWatchDir checks a repository's watch directory when a creation
// or configuration change (from old to cfg) sets a new one: no other
// repository may watch it or a directory inside or around it, and the
// server creates it if it is missing and must be able to write in it
// (imported files are deleted or moved). The caller holds cfgMu, so that
// two changes cannot claim one directory at once.
func (s *Service) prepareWatchDir(ctx context.Context, name, kind string, old, cfg []byte) error {
	st, err := parseSettings(cfg)
	if err != nil || st.WatchDir == "" {
		return err
	}
	dir := filepath.Clean(st.WatchDir)
	if prev, err := parseSettings(old); err == nil && prev.WatchDir != "" && filepath.Clean(prev.WatchDir) == dir {
		return nil
	}
	if kind != meta.KindHosted {
		return fmt.Errorf("%w: watch_dir: only hosted repositories take files from a drop folder", ErrInvalidRepo)
	}
	repos, err := s.meta.ListRepos(ctx)
	if err != nil {
		return fmt.Errorf("check watch_dir: %w", err)
	}
	for i := range repos {
		other, err := parseSettings(repos[i].Config)
		if repos[i].Name == name || err != nil || other.WatchDir == "" {
			continue
		}
		if overlap(dir, filepath.Clean(other.WatchDir)) {
			return fmt.Errorf("%w: watch_dir %s overlaps %s, the drop folder of repository %q: each repository needs a directory of its own, outside the others",
				ErrInvalidRepo, dir, other.WatchDir, repos[i].Name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: watch_dir: the server cannot create %s: %v", ErrInvalidRepo, dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: watch_dir: %s is not a directory", ErrInvalidRepo, dir)
	}
	// A probe file: hidden names are never imported.
	f, err := os.CreateTemp(dir, ".packyard-probe-*")
	if err != nil {
		return fmt.Errorf("%w: watch_dir: the server cannot write in %s (it deletes or moves the files it imports): %v", ErrInvalidRepo, dir, err)
	}
	f.Close()
	_ = os.Remove(f.Name())
	// Symbolic links may make two different names one directory.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("%w: watch_dir: %s: %v", ErrInvalidRepo, dir, err)
	}
	for i := range repos {
		other, err := parseSettings(repos[i].Config)
		if repos[i].Name == name || err != nil || other.WatchDir == "" {
			continue
		}
		if o, err := filepath.EvalSymlinks(other.WatchDir); err == nil && overlap(real, o) {
			return fmt.Errorf("%w: watch_dir %s is %s, which overlaps %s, the drop folder of repository %q: each repository needs a directory of its own, outside the others",
				ErrInvalidRepo, dir, real, other.WatchDir, repos[i].Name)
		}
	}
	return nil
}

// overlap reports whether one of two clean paths is the other or inside it.
func overlap(a, b string) bool {
	inside := func(p, dir string) bool {
		return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
	}
	return inside(a, b) || inside(b, a)
}

// KeyNames returns the signing key names (none for an unsigned repository).
func (st Settings) KeyNames() []string {
	if st.Keys == nil {
		return nil
	}
	return *st.Keys
}

func (st Settings) format() format.Settings {
	out := format.Settings{Architectures: st.Architectures, Origin: st.Origin, Label: st.Label}
	if st.ValidFor != "" {
		out.ValidFor, _ = time.ParseDuration(st.ValidFor)
	}
	return out
}

// checkKeys makes sure every named key exists.
func (s *Service) checkKeys(st Settings) error {
	names := st.KeyNames()
	if len(names) == 0 {
		return nil
	}
	if s.opts.Keys == nil {
		return fmt.Errorf("%w: keys: this server has no keyring", ErrInvalidRepo)
	}
	if _, err := s.opts.Keys.Signer(names); err != nil {
		return fmt.Errorf("%w: keys: %v", ErrInvalidRepo, err)
	}
	return nil
}

// withDefaultKey sets the server's default signing key in a new
// repository's configuration when it names no keys.
func (s *Service) withDefaultKey(cfg []byte) ([]byte, error) {
	st, err := parseSettings(cfg)
	if err != nil {
		return nil, err
	}
	if st.Keys != nil || s.opts.DefaultKey == "" {
		return cfg, s.checkKeys(st)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, fmt.Errorf("%w: configuration must be a JSON object", ErrInvalidRepo)
	}
	m["keys"], _ = json.Marshal([]string{s.opts.DefaultKey})
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	st, _ = parseSettings(out)
	return out, s.checkKeys(st)
}

// RepoSettings returns a repository's parsed settings.
func RepoSettings(r *meta.Repo) (Settings, error) { return parseSettings(r.Config) }

// SigningKeys describes the keys that sign a repository.
func (s *Service) SigningKeys(r *meta.Repo) ([]sign.KeyInfo, error) {
	st, err := parseSettings(r.Config)
	if err != nil {
		return nil, err
	}
	var out []sign.KeyInfo
	for _, n := range st.KeyNames() {
		if s.opts.Keys == nil {
			return nil, fmt.Errorf("no keyring for key %q", n)
		}
		info, err := s.opts.Keys.Describe(n)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// ReposUsingKey names the repositories signed with a key.
func (s *Service) ReposUsingKey(ctx context.Context, name string) ([]string, error) {
	repos, err := s.meta.ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range repos {
		st, err := parseSettings(repos[i].Config)
		if err != nil {
			continue
		}
		for _, k := range st.KeyNames() {
			if k == name {
				out = append(out, repos[i].Name)
			}
		}
	}
	return out, nil
}

// signing returns the signer and armored public keys of a repository's
// settings (nil, nil for an unsigned one).
func (s *Service) signing(st Settings) (format.Signer, []byte, []byte, error) {
	names := st.KeyNames()
	if len(names) == 0 {
		return nil, nil, nil, nil
	}
	if s.opts.Keys == nil {
		return nil, nil, nil, fmt.Errorf("repository is signed by %v but the server has no keyring", names)
	}
	sg, err := s.opts.Keys.Signer(names)
	if err != nil {
		return nil, nil, nil, err
	}
	asc, err := sg.PublicKeys()
	if err != nil {
		return nil, nil, nil, err
	}
	bin, err := sg.PublicKeysBinary()
	if err != nil {
		return nil, nil, nil, err
	}
	return sg, asc, bin, nil
}

// mergeConfig applies a patch to a configuration: each top-level key of
// the patch replaces the same key, and null removes it.
func mergeConfig(cfg, patch []byte) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(cfg)) > 0 {
		if err := json.Unmarshal(cfg, &m); err != nil {
			return nil, fmt.Errorf("stored configuration is not a JSON object: %w", err)
		}
	}
	if m == nil { // stored as JSON null
		m = map[string]json.RawMessage{}
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("%w: configuration must be a JSON object", ErrInvalidRepo)
	}
	for k, v := range p {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return json.Marshal(m)
}
