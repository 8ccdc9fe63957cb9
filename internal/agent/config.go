package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the agent's configuration file (TOML). Every duration is in
// seconds.
type Config struct {
	// Origin is the origin server's base URL (http://origin:8080).
	Origin string `toml:"origin"`
	// Name is the edge's identity on the origin: the name of its token,
	// under which it reports its position.
	Name string `toml:"name"`
	// Token is the edge's credential on the origin (scope edge). Env
	// PACKYARD_AGENT_TOKEN overrides it, so that it need not be in the file.
	Token string `toml:"token"`
	// Proxy is an HTTP proxy URL to reach the origin through ("" none).
	Proxy string `toml:"proxy"`
	// Repos are the repositories to follow; empty follows every hosted and
	// mirror repository of the origin.
	Repos []string `toml:"repos"`
	// RootDir is the tree the agent writes: RootDir/<repo>/<path>, the
	// origin's URL layout.
	RootDir string `toml:"root_dir"`
	// StateDB is the agent's own SQLite database (keep it outside
	// RootDir). Deleting it makes the agent rebuild it from the tree.
	StateDB string `toml:"state_db"`
	// FullSyncInterval is how often the whole tree is compared with the
	// origin (default 3600; 0 turns the schedule off).
	FullSyncInterval int `toml:"full_sync_interval"`
	// RehashEvery makes every Nth full sync re-hash every file instead of
	// trusting size and modification time (default 24; 1: every pass).
	RehashEvery int `toml:"rehash_every"`
	// KeepFiles are full paths of files under RootDir that the agent never
	// deletes (a published key, a banner).
	KeepFiles []string `toml:"keep_files"`
	// Listen is the address of the agent's own HTTP server: /healthz,
	// /metrics, POST /api/v1/sync, and RootDir as static files ("" none).
	Listen string `toml:"listen"`
	// SyncToken is the secret that POST /api/v1/sync requires as
	// "Authorization: Bearer …" (at least 16 characters); "" turns that
	// endpoint off. Env PACKYARD_AGENT_SYNC_TOKEN overrides it.
	SyncToken string `toml:"sync_token"`
	// GracePeriod is how long files that left the current generation stay
	// on disk, for clients that read an older index (default 86400).
	GracePeriod int `toml:"grace_period"`
	// Concurrency bounds parallel downloads (default 8).
	Concurrency int `toml:"download_concurrency"`
	// HeartbeatInterval is how often the agent reports to the origin
	// (default 15); it also reports after every sync.
	HeartbeatInterval int `toml:"heartbeat_interval"`
	// Feed is how the change feed is followed: "auto" (a server-sent event
	// stream, falling back to polling when a proxy buffers it), "stream"
	// or "poll".
	Feed string `toml:"feed"`
	// PollInterval is the wait between polls when polling (default 1).
	PollInterval int `toml:"poll_interval"`
	// FeedIdleTimeout drops a stream that sent nothing, not even a
	// heartbeat, for this long (default 45; the origin beats every 15).
	FeedIdleTimeout int `toml:"feed_idle_timeout"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `toml:"log_level"`
}

// Defaults returns the configuration with every default set.
func Defaults() Config {
	return Config{
		FullSyncInterval:  3600,
		RehashEvery:       24,
		GracePeriod:       86400,
		Concurrency:       8,
		HeartbeatInterval: 15,
		Feed:              "auto",
		PollInterval:      1,
		FeedIdleTimeout:   45,
		LogLevel:          "info",
	}
}

// LoadConfig reads a TOML file over the defaults, then the PACKYARD_AGENT_*
// environment, and validates the result. Unknown keys are errors.
func LoadConfig(file string, getenv func(string) string) (Config, error) {
	c := Defaults()
	b, err := os.ReadFile(file)
	if err != nil {
		return c, fmt.Errorf("read agent config: %w", err)
	}
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			var errs []error
			for i := range sm.Errors {
				row, col := sm.Errors[i].Position()
				errs = append(errs, fmt.Errorf("agent config %s:%d:%d: unknown key %q", file, row, col, strings.Join(sm.Errors[i].Key(), ".")))
			}
			return c, errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return c, fmt.Errorf("agent config %s:%d:%d: %s", file, row, col, de.Error())
		}
		return c, fmt.Errorf("agent config %s: %w", file, err)
	}
	for key, dst := range map[string]*string{
		"PACKYARD_AGENT_ORIGIN": &c.Origin, "PACKYARD_AGENT_NAME": &c.Name, "PACKYARD_AGENT_TOKEN": &c.Token,
		"PACKYARD_AGENT_PROXY": &c.Proxy, "PACKYARD_AGENT_ROOT_DIR": &c.RootDir, "PACKYARD_AGENT_STATE_DB": &c.StateDB,
		"PACKYARD_AGENT_LISTEN": &c.Listen, "PACKYARD_AGENT_LOG_LEVEL": &c.LogLevel, "PACKYARD_AGENT_SYNC_TOKEN": &c.SyncToken,
	} {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	// Relative paths are relative to the configuration file.
	base := filepath.Dir(file)
	for _, p := range []*string{&c.RootDir, &c.StateDB} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return c, c.Validate()
}

// Validate checks the configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Origin); c.Origin == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("origin: %q is not an http(s) URL of the origin server", c.Origin))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("name: the edge's name (its token's name) is required"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token: an edge token is required (packyard token create NAME --scope edge), or env PACKYARD_AGENT_TOKEN"))
	}
	if c.SyncToken != "" && (len(c.SyncToken) < minSyncToken || strings.TrimSpace(c.SyncToken) != c.SyncToken) {
		errs = append(errs, fmt.Errorf("sync_token: use at least %d characters without surrounding spaces (openssl rand -hex 24)", minSyncToken))
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("proxy: %q is not a proxy URL", c.Proxy))
		}
	}
	for _, r := range c.Repos {
		if !validRepoName(r) {
			errs = append(errs, fmt.Errorf("repos: %q is not a repository name", r))
		}
	}
	switch {
	case c.RootDir == "":
		errs = append(errs, errors.New("root_dir: the directory to write the repositories into is required"))
	case filepath.Clean(c.RootDir) == "/":
		errs = append(errs, errors.New("root_dir: not /: the agent deletes every file under root_dir that it does not manage"))
	}
	if c.StateDB == "" {
		errs = append(errs, errors.New("state_db: the agent's state file is required"))
	} else if c.RootDir != "" && within(c.RootDir, c.StateDB) {
		errs = append(errs, fmt.Errorf("state_db: %s is inside root_dir; keep it outside, where neither clients nor the full sync see it", c.StateDB))
	}
	for _, k := range c.KeepFiles {
		if !filepath.IsAbs(k) || c.RootDir == "" || !within(c.RootDir, k) {
			errs = append(errs, fmt.Errorf("keep_files: %q is not a full path under root_dir", k))
		}
	}
	checks := []struct {
		name string
		v    int
		min  int
	}{
		{"full_sync_interval", c.FullSyncInterval, 0}, {"rehash_every", c.RehashEvery, 1}, {"grace_period", c.GracePeriod, 0},
		{"download_concurrency", c.Concurrency, 1}, {"heartbeat_interval", c.HeartbeatInterval, 1},
		{"poll_interval", c.PollInterval, 1}, {"feed_idle_timeout", c.FeedIdleTimeout, 1},
	}
	for _, ck := range checks {
		if ck.v < ck.min {
			errs = append(errs, fmt.Errorf("%s: %d is below %d", ck.name, ck.v, ck.min))
		}
	}
	switch c.Feed {
	case "auto", "stream", "poll":
	default:
		errs = append(errs, fmt.Errorf("feed: %q is not one of auto, stream, poll", c.Feed))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// minSyncToken is the shortest sync_token accepted.
const minSyncToken = 16

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// within reports whether p is dir or below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// validRepoName reports whether s can be a repository's directory.
func validRepoName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validFilePath reports whether an origin's path can be written under a
// repository's directory: relative, clean, no "..", no temporary name of
// the agent's.
func validFilePath(p string) bool {
	if p == "" || len(p) > 4096 || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." ||
		strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\x00\\") {
		return false
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." || strings.HasPrefix(el, tmpPrefix) {
			return false
		}
	}
	return true
}
