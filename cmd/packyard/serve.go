package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/backend"
	"github.com/packyard/packyard/internal/config"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/httpfast"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/mirror"
	"github.com/packyard/packyard/internal/proxy"
	"github.com/packyard/packyard/internal/repo"
	"github.com/packyard/packyard/internal/sign"
	"github.com/packyard/packyard/internal/watch"
)

func newServeCmd() *cobra.Command {
	var cfgFile string
	def := config.Default()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the repository server",
		Long: "Run the repository server. With no configuration it keeps its data in ./packyard-data\n" +
			"(SQLite metadata and a blob directory) and listens on :8080.\n\n" +
			"Settings come from defaults, then the TOML file given by --config (env PACKYARD_CONFIG),\n" +
			"then PACKYARD_* environment variables, then flags.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if cfgFile == "" {
				cfgFile = os.Getenv("PACKYARD_CONFIG")
			}
			if cfgFile != "" {
				if err := config.LoadFile(&cfg, cfgFile); err != nil {
					return err
				}
			}
			if err := config.LoadEnv(&cfg, os.Getenv); err != nil {
				return err
			}
			if err := applyFlags(cmd.Flags(), &cfg); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgFile, "config", "", "TOML configuration file (env PACKYARD_CONFIG)")
	f.String("data", def.Data, "data directory (env PACKYARD_DATA)")
	f.String("database", "", "metadata store: sqlite:PATH or postgres://… (env PACKYARD_DATABASE; default sqlite:DATA/packyard.db)")
	f.String("blobs", "", "blob store: file:PATH or s3://BUCKET/PREFIX?endpoint=URL&region=R (env PACKYARD_BLOBS; default file:DATA/blobs)")
	f.String("listen", def.Listen, "listen address (env PACKYARD_LISTEN)")
	f.String("log-level", def.LogLevel, "debug, info, warn or error (env PACKYARD_LOG_LEVEL)")
	f.String("log-format", def.LogFormat, "text, json or auto: text on a terminal (env PACKYARD_LOG_FORMAT)")
	f.String("max-upload-size", "8GiB", "largest package accepted (env PACKYARD_MAX_UPLOAD_SIZE)")
	f.String("read-cache-size", "128MiB", "in-memory cache of small files read from an S3 blob store, 0 to disable (env PACKYARD_READ_CACHE_SIZE)")
	f.Duration("generation-grace", def.GenerationGrace.Duration, "how long superseded generations stay readable (env PACKYARD_GENERATION_GRACE)")
	f.Int("keep-generations", def.KeepGenerations, "generations kept per repository however old (env PACKYARD_KEEP_GENERATIONS)")
	f.Duration("read-header-timeout", def.ReadHeaderTimeout.Duration, "limit for reading request headers (env PACKYARD_READ_HEADER_TIMEOUT)")
	f.Duration("idle-timeout", def.IdleTimeout.Duration, "keep-alive idle timeout (env PACKYARD_IDLE_TIMEOUT)")
	f.Duration("body-idle-timeout", def.BodyIdleTimeout.Duration, "abort a request body that stalls this long (env PACKYARD_BODY_IDLE_TIMEOUT)")
	f.Duration("shutdown-timeout", def.ShutdownTimeout.Duration, "graceful shutdown limit (env PACKYARD_SHUTDOWN_TIMEOUT)")
	f.String("base-url", "", "public URL for generated client configuration (env PACKYARD_BASE_URL)")
	f.Duration("watch-rescan", def.WatchRescan.Duration, "full scan interval of drop folders, beside change notifications (env PACKYARD_WATCH_RESCAN)")
	f.Duration("watch-settle", def.WatchSettle.Duration, "how long a dropped file must stay unchanged before it is imported (env PACKYARD_WATCH_SETTLE)")
	f.String("debug-listen", "", "serve Go's profiler (/debug/pprof/) on this address, unauthenticated: keep it on loopback (env PACKYARD_DEBUG_LISTEN)")
	return cmd
}

// applyFlags copies flags the user set over the configuration.
func applyFlags(fs *pflag.FlagSet, c *config.Server) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "data":
			c.Data = v
		case "database":
			c.Database = v
		case "blobs":
			c.Blobs = v
		case "listen":
			c.Listen = v
		case "log-level":
			c.LogLevel = v
		case "log-format":
			c.LogFormat = v
		case "base-url":
			c.BaseURL = v
		case "debug-listen":
			c.DebugListen = v
		case "max-upload-size":
			var n int64
			n, err = config.ParseSize(v)
			c.MaxUploadSize = config.Size(n)
		case "read-cache-size":
			var n int64
			n, err = config.ParseSize(v)
			c.ReadCacheSize = config.Size(n)
		case "keep-generations":
			c.KeepGenerations, err = fs.GetInt(f.Name)
		case "generation-grace":
			c.GenerationGrace.Duration, err = fs.GetDuration(f.Name)
		case "read-header-timeout":
			c.ReadHeaderTimeout.Duration, err = fs.GetDuration(f.Name)
		case "idle-timeout":
			c.IdleTimeout.Duration, err = fs.GetDuration(f.Name)
		case "body-idle-timeout":
			c.BodyIdleTimeout.Duration, err = fs.GetDuration(f.Name)
		case "shutdown-timeout":
			c.ShutdownTimeout.Duration, err = fs.GetDuration(f.Name)
		case "watch-rescan":
			c.WatchRescan.Duration, err = fs.GetDuration(f.Name)
		case "watch-settle":
			c.WatchSettle.Duration, err = fs.GetDuration(f.Name)
		}
	})
	return err
}

func newLogger(cfg config.Server, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	useText := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			useText = true
		}
	}
	if useText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// lockData takes an exclusive lock on the data directory so that two
// servers never share one.
func lockData(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another packyard process", dir)
	}
	return f, nil
}

func serve(ctx context.Context, cfg config.Server, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockData(cfg.Data)
	if err != nil {
		return err
	}
	defer lock.Close()

	blobs, err := backend.OpenBlobs(ctx, cfg.BlobStore(), backend.BlobOptions{PresignReads: cfg.S3PresignReads})
	if err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	defer blobs.Close()
	db, err := backend.OpenMeta(ctx, cfg.MetaStore())
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	defer db.Close()

	tokPath, created, err := auth.EnsureAdmin(ctx, db, cfg.Data, cfg.AdminToken)
	if err != nil {
		return err
	}
	if created && cfg.AdminToken == "" {
		log.Info("created the first admin token", "file", tokPath)
	}

	keys, err := openKeyring(cfg, log)
	if err != nil {
		return err
	}

	metrics := httpapi.NewMetrics()
	svc := repo.New(blobs, db, []format.Format{rpm.New(), deb.New(), arch.New()}, log, repo.Options{
		MaxUploadSize:   int64(cfg.MaxUploadSize),
		GenerationGrace: cfg.GenerationGrace.Duration,
		KeepGenerations: cfg.KeepGenerations,
		Metrics:         metrics,
		Keys:            keys,
		DefaultKey:      cfg.DefaultKey,
	})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Close()
	// Closed before the service (defers run last first): imports under
	// way end before the publishers stop.
	watcher := watch.New(svc, db, log, watch.Options{
		Settle:  cfg.WatchSettle.Duration,
		Rescan:  cfg.WatchRescan.Duration,
		Metrics: metrics,
	})
	if err := watcher.Start(ctx); err != nil {
		return err
	}
	defer watcher.Close()

	spool, err := proxy.TempDirFor(cfg.Data)
	if err != nil {
		return err
	}
	px := proxy.New(proxy.Options{Blobs: blobs, Meta: db, Log: log, Metrics: metrics, TempDir: spool,
		MaxFileSize: int64(cfg.MaxUploadSize), Formats: map[string]format.Format{meta.FormatRPM: rpm.New(), meta.FormatDeb: deb.New(), meta.FormatArch: arch.New()},
		Signer: svc.RepoSigner})
	defer px.Close()
	mx := mirror.New(mirror.Options{Repos: svc, Meta: db, Blobs: blobs, Log: log, Metrics: metrics,
		HTTP: mirrorHTTPClient(), MaxFileSize: int64(cfg.MaxUploadSize), Exclusive: strings.HasPrefix(cfg.MetaStore(), "sqlite:")})
	mctx, stopMirrors := context.WithCancel(ctx)
	defer stopMirrors()
	go mx.Run(mctx)
	api := httpapi.New(svc, auth.New(db), metrics, log, httpapi.Options{
		Proxy:            px,
		Mirror:           mx,
		BodyIdleTimeout:  cfg.BodyIdleTimeout.Duration,
		MaxUploadSize:    int64(cfg.MaxUploadSize),
		ReadCacheSize:    readCacheSize(cfg),
		ReadCacheMaxFile: readCacheMaxFile(cfg),
		BaseURL:          cfg.BaseURL,
		Keys:             keys,
		DefaultKey:       cfg.DefaultKey,
		Ready: func(ctx context.Context) error {
			_, err := db.LastSeq(ctx)
			return err
		},
	})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout.Duration,
		IdleTimeout:       cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var fast *httpfast.Listener
	if cfg.FastPath {
		fast = httpfast.Listen(ln, httpfast.Options{Handler: api, ReadHeaderTimeout: srv.ReadHeaderTimeout,
			IdleTimeout: srv.IdleTimeout, Log: log})
		ln = fast
	}
	if cfg.DebugListen != "" {
		if err := serveDebug(cfg.DebugListen, log); err != nil {
			return err
		}
	}
	log.Info("packyard serving", "listen", ln.Addr().String(), "data", cfg.Data, "version", version,
		"database", backend.Redact(cfg.MetaStore()), "blobs", cfg.BlobStore())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if fast != nil {
		_ = fast.Shutdown(sctx) // what is left after the deadline ends with the process
	}
	return nil
}

// serveDebug serves net/http/pprof on addr, apart from the API so that it
// is never exposed by accident with it.
func serveDebug(addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("profiler listening without authentication", "listen", ln.Addr().String())
	go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return nil
}

// openKeyring opens the signing keys and, on first start, generates the
// default key, so that repositories are signed out of the box.
func openKeyring(cfg config.Server, log *slog.Logger) (*sign.Keyring, error) {
	dir := cfg.KeyDir
	if dir == "" {
		dir = filepath.Join(cfg.Data, "keys")
	}
	ext := map[string]sign.ExternalKey{}
	for name, ref := range cfg.Keys {
		k := sign.ExternalKey{Path: ref.Path}
		if ref.PassphraseFile != "" {
			b, err := os.ReadFile(ref.PassphraseFile)
			if err != nil {
				return nil, fmt.Errorf("key %q: read passphrase: %w", name, err)
			}
			line, _, _ := strings.Cut(string(b), "\n")
			k.Passphrase = []byte(strings.TrimRight(line, "\r"))
		}
		ext[name] = k
	}
	kr, err := sign.OpenKeyring(dir, ext)
	if err != nil {
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	if cfg.DefaultKey == "" {
		return kr, nil
	}
	if _, err := kr.Get(cfg.DefaultKey); err == nil {
		return kr, nil
	}
	start := time.Now()
	k, err := kr.Generate(cfg.DefaultKey, "packyard signing key "+cfg.DefaultKey, "", cfg.DefaultKeyAlgorithm)
	if errors.Is(err, sign.ErrKeyExists) {
		// Another node sharing the key directory generated it first.
		if _, err := kr.Get(cfg.DefaultKey); err == nil {
			return kr, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("generate the default signing key: %w", err)
	}
	log.Info("generated the default signing key", "name", cfg.DefaultKey, "fingerprint", k.Fingerprint(),
		"dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return kr, nil
}

// readCacheSize is the read cache's bound: read_cache_size for a remote
// blob store, none for a file store (sendfile and the page cache serve
// its files better).
func readCacheSize(cfg config.Server) int64 {
	if strings.HasPrefix(cfg.BlobStore(), "file:") {
		return min(int64(cfg.ReadCacheSize), localReadCacheMax)
	}
	return int64(cfg.ReadCacheSize)
}

// With a local (file:) store, the read cache keeps only files up to
// localReadCacheFile — pointer files and small indexes, which every client
// asks for and which are then answered from memory (by the fast path);
// larger ones are sent with sendfile — in at most localReadCacheMax.
const (
	localReadCacheFile = 64 << 10
	localReadCacheMax  = 32 << 20
)

// readCacheMaxFile bounds one file of the read cache (0: the cache's
// default, an eighth of it).
func readCacheMaxFile(cfg config.Server) int64 {
	if strings.HasPrefix(cfg.BlobStore(), "file:") {
		return localReadCacheFile
	}
	return 0
}

// mirrorHTTPClient is the client mirror syncs fetch upstreams with: it
// honours HTTP(S)_PROXY, and bounds connecting and waiting for response
// headers (a body may take long: packages are large).
func mirrorHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr}
}
