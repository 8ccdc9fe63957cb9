// Package config holds packyard's typed server configuration: defaults, an
// optional TOML file, PACKYARD_* environment variables and flags, in that
// order of precedence (later wins), and validation.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Duration is a time.Duration that reads "24h" or "90s" from TOML and env.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a byte count that reads "8GiB", "512MiB" or a plain number.
type Size int64

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// ParseSize parses "123", "10KiB", "8GiB", "1GB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: use a number of bytes or e.g. 512MiB, 8GiB", s)
	}
	return n * mult, nil
}

// Server is the configuration of `packyard serve`. Every field can be set
// in the TOML file (key in the toml tag), by environment variable (env tag)
// and by the flag of the same name.
type Server struct {
	// Data is the data directory: SQLite metadata, blobs, keys, the admin
	// token.
	Data string `toml:"data" env:"PACKYARD_DATA"`
	// Database is the metadata store: sqlite:PATH or postgres://…; empty
	// means sqlite:<data>/packyard.db.
	Database string `toml:"database" env:"PACKYARD_DATABASE"`
	// Blobs is the blob store: file:PATH or
	// s3://BUCKET/PREFIX?endpoint=URL&region=R (credentials from
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); empty means
	// file:<data>/blobs.
	Blobs string `toml:"blobs" env:"PACKYARD_BLOBS"`
	// S3PresignReads redirects downloads of packages from an S3 blob store
	// to presigned URLs of the store instead of streaming them through.
	S3PresignReads bool `toml:"s3_presign_reads" env:"PACKYARD_S3_PRESIGN_READS"`
	// ReadCacheSize bounds the in-memory cache of small files (index files,
	// small packages) read from a remote (S3) blob store; 0 disables it. A
	// file store is not cached: the kernel's page cache does that job.
	ReadCacheSize Size `toml:"read_cache_size" env:"PACKYARD_READ_CACHE_SIZE"`
	// Listen is the HTTP listen address.
	Listen string `toml:"listen" env:"PACKYARD_LISTEN"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level" env:"PACKYARD_LOG_LEVEL"`
	// LogFormat is text, json or auto (text on a terminal, JSON otherwise).
	LogFormat string `toml:"log_format" env:"PACKYARD_LOG_FORMAT"`
	// MaxUploadSize bounds one uploaded package file.
	MaxUploadSize Size `toml:"max_upload_size" env:"PACKYARD_MAX_UPLOAD_SIZE"`
	// GenerationGrace is how long a superseded generation stays readable.
	GenerationGrace Duration `toml:"generation_grace" env:"PACKYARD_GENERATION_GRACE"`
	// KeepGenerations is the minimum number of generations kept per
	// repository, however old.
	KeepGenerations int `toml:"keep_generations" env:"PACKYARD_KEEP_GENERATIONS"`
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout Duration `toml:"read_header_timeout" env:"PACKYARD_READ_HEADER_TIMEOUT"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout Duration `toml:"idle_timeout" env:"PACKYARD_IDLE_TIMEOUT"`
	// FastPath answers plain GETs of files held in memory (a proxy
	// repository's cached metadata) outside net/http (internal/httpfast).
	FastPath bool `toml:"fast_path" env:"PACKYARD_FAST_PATH"`
	// BodyIdleTimeout aborts an upload or download that moves no byte for
	// this long (a whole upload may take longer).
	BodyIdleTimeout Duration `toml:"body_idle_timeout" env:"PACKYARD_BODY_IDLE_TIMEOUT"`
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM/SIGINT.
	ShutdownTimeout Duration `toml:"shutdown_timeout" env:"PACKYARD_SHUTDOWN_TIMEOUT"`
	// AdminToken presets the first admin token instead of generating one.
	AdminToken string `toml:"admin_token" env:"PACKYARD_ADMIN_TOKEN"`
	// BaseURL is the public URL of the server, used in generated client
	// configuration; empty means derived from each request.
	BaseURL string `toml:"base_url" env:"PACKYARD_BASE_URL"`
	// KeyDir holds the signing keys the server generates or imports;
	// empty means <data>/keys.
	KeyDir string `toml:"key_dir" env:"PACKYARD_KEY_DIR"`
	// DefaultKey names the key that signs new repositories; the server
	// generates it on first start if no key of that name exists. Empty
	// means new repositories are unsigned unless a key is given.
	DefaultKey string `toml:"default_key" env:"PACKYARD_DEFAULT_KEY"`
	// DefaultKeyAlgorithm is the algorithm of the default key when the
	// server generates it: rsa3072 (empty), rsa4096 or ed25519.
	DefaultKeyAlgorithm string `toml:"default_key_algorithm" env:"PACKYARD_DEFAULT_KEY_ALGORITHM"`
	// Keys references private keys kept outside the key directory, by
	// name: [keys.release] path = "...", passphrase_file = "...".
	Keys map[string]KeyRef `toml:"keys"`
	// WatchRescan is how often every drop folder (a repository's
	// watch_dir) is scanned in full, beside change notifications: it
	// catches files whose events were lost (NFS, a full event queue).
	WatchRescan Duration `toml:"watch_rescan" env:"PACKYARD_WATCH_RESCAN"`
	// WatchSettle is how long a file in a drop folder must keep its size
	// and modification time before it is imported.
	WatchSettle Duration `toml:"watch_settle" env:"PACKYARD_WATCH_SETTLE"`
	// DebugListen, when set, serves Go's profiler (net/http/pprof) on a
	// second address, without authentication: keep it on loopback.
	DebugListen string `toml:"debug_listen" env:"PACKYARD_DEBUG_LISTEN"`
}

// MetaStore is the metadata store spec: Database, or SQLite in Data.
func (c *Server) MetaStore() string {
	if c.Database != "" {
		return c.Database
	}
	return "sqlite:" + filepath.Join(c.Data, "packyard.db")
}

// BlobStore is the blob store spec: Blobs, or a directory in Data.
func (c *Server) BlobStore() string {
	if c.Blobs != "" {
		return c.Blobs
	}
	return "file:" + filepath.Join(c.Data, "blobs")
}

// KeyRef references a private key file.
type KeyRef struct {
	// Path is an ASCII-armored private key.
	Path string `toml:"path"`
	// PassphraseFile holds the passphrase of an encrypted key (first line).
	PassphraseFile string `toml:"passphrase_file"`
}

// Default returns the embedded defaults.
func Default() Server {
	return Server{
		Data:              "./packyard-data",
		Listen:            ":8080",
		LogLevel:          "info",
		LogFormat:         "auto",
		MaxUploadSize:     8 << 30,
		ReadCacheSize:     128 << 20,
		GenerationGrace:   Duration{24 * time.Hour},
		KeepGenerations:   3,
		ReadHeaderTimeout: Duration{10 * time.Second},
		IdleTimeout:       Duration{120 * time.Second},
		FastPath:          true,
		BodyIdleTimeout:   Duration{60 * time.Second},
		ShutdownTimeout:   Duration{30 * time.Second},
		DefaultKey:        "default",
		WatchRescan:       Duration{30 * time.Second},
		WatchSettle:       Duration{2 * time.Second},
	}
}

// LoadFile merges a TOML file into c. Unknown keys are errors.
func LoadFile(c *Server, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		// StrictMissingError unwraps to its DecodeErrors, so it is
		// checked first: its keys are what the user has to fix.
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			errs := make([]error, 0, len(sm.Errors))
			for i := range sm.Errors {
				de := &sm.Errors[i]
				row, col := de.Position()
				errs = append(errs, fmt.Errorf("config %s:%d:%d: unknown key %q", path, row, col, strings.Join(de.Key(), ".")))
			}
			return errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			if k := de.Key(); len(k) > 0 {
				return fmt.Errorf("config %s:%d:%d: %s: %s", path, row, col, strings.Join(k, "."), de.Error())
			}
			return fmt.Errorf("config %s:%d:%d: %s", path, row, col, de.Error())
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// LoadEnv merges PACKYARD_* environment variables into c.
func LoadEnv(c *Server, getenv func(string) string) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("env")
		if name == "" {
			continue
		}
		s := getenv(name)
		if s == "" {
			continue
		}
		if err := setField(v.Field(i), s); err != nil {
			return fmt.Errorf("%s=%q: %w", name, s, err)
		}
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// Validate checks the configuration and says what to fix.
func (c *Server) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: the data directory must not be empty"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: the listen address must not be empty"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not one of auto, text, json", c.LogFormat))
	}
	if c.MaxUploadSize <= 0 {
		errs = append(errs, errors.New("max_upload_size: must be positive"))
	}
	if c.ReadCacheSize < 0 {
		errs = append(errs, errors.New("read_cache_size: must not be negative (0 disables the cache)"))
	}
	if c.KeepGenerations < 1 {
		errs = append(errs, errors.New("keep_generations: must be at least 1"))
	}
	if c.GenerationGrace.Duration < 0 {
		errs = append(errs, errors.New("generation_grace: must not be negative"))
	}
	if c.ReadHeaderTimeout.Duration <= 0 || c.BodyIdleTimeout.Duration <= 0 {
		errs = append(errs, errors.New("read_header_timeout and body_idle_timeout: must be positive"))
	}
	if c.WatchRescan.Duration <= 0 || c.WatchSettle.Duration <= 0 {
		errs = append(errs, errors.New("watch_rescan and watch_settle: must be positive"))
	}
	switch c.DefaultKeyAlgorithm {
	case "", "rsa3072", "rsa4096", "ed25519":
	default:
		errs = append(errs, fmt.Errorf("default_key_algorithm: %q is not one of rsa3072, rsa4096, ed25519", c.DefaultKeyAlgorithm))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Keys)) {
		if c.Keys[name].Path == "" {
			errs = append(errs, fmt.Errorf("keys.%s.path: must name the key's ASCII-armored private key file", name))
		}
	}
	return errors.Join(errs...)
}
