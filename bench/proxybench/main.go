// Command proxybench measures packyard's proxy repositories next to nginx
// proxy_cache and apt-cacher-ng, in the same run, in front of the same
// upstream (nginx serving a signed APT repository): cold latency of a
// ~3 KB metadata file (InRelease) and of a 20 MiB package, warm requests/s
// and latency of the metadata file and MiB/s of the package, and the time
// 64 clients take to get the same uncached package at once. It starts every
// server itself on free loopback ports and prints a markdown report.
//
//	go run ./bench/proxybench -packyard BIN [-warm-for 15s] [-fan-in 64]
//	go run ./bench/proxybench -packyard BIN -quick
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/packyard/packyard/bench/internal/stats"
)

type config struct {
	bin          string
	nginx        string
	acng         string
	work         string
	out          string
	pkgSize      int64
	wanRate      string
	coldSamples  int
	metaClients  int
	pkgClients   int
	warmFor      time.Duration
	warmRounds   int
	fanIn        int
	fanInSamples int
	engines      string
	quick        bool
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// run is one benchmark run: its settings, upstream and results.
type run struct {
	cfg   *config
	up    *upstream
	files *repoFiles
	seq   int

	results []*engineResult
	direct  []time.Duration
}

// engineResult is every figure of one proxy.
type engineResult struct {
	name     string
	cold     *coldResult
	warmMeta *warmResult
	warmPkg  *warmResult
	fanIn    *fanInResult
}

func main() {
	cfg := &config{}
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (required)")
	flag.StringVar(&cfg.nginx, "nginx", lookDefault("nginx", "/usr/sbin/nginx"), "nginx binary (upstream and proxy_cache)")
	flag.StringVar(&cfg.acng, "apt-cacher-ng", lookDefault("apt-cacher-ng", "/usr/sbin/apt-cacher-ng"), "apt-cacher-ng binary")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.Int64Var(&cfg.pkgSize, "pkg-size", 20<<20, "payload bytes of the large package")
	flag.StringVar(&cfg.wanRate, "wan-rate", "10m", "nginx limit_rate of the upstream in the fan-in runs (bytes/s per connection; 0: none)")
	flag.IntVar(&cfg.coldSamples, "cold-samples", 5, "cold first fetches per proxy, each from a new empty cache")
	flag.IntVar(&cfg.metaClients, "meta-clients", 16, "concurrent keep-alive clients reading the metadata file")
	flag.IntVar(&cfg.pkgClients, "pkg-clients", 4, "concurrent keep-alive clients reading the package")
	flag.DurationVar(&cfg.warmFor, "warm-for", 10*time.Second, "length of each warm run")
	flag.IntVar(&cfg.warmRounds, "warm-rounds", 5, "warm runs per proxy and file, the proxies in turn in each round (the report gives the median run)")
	flag.IntVar(&cfg.fanIn, "fan-in", 64, "concurrent clients of the cold fan-in")
	flag.IntVar(&cfg.fanInSamples, "fan-in-samples", 3, "fan-in runs (and single cold downloads) per proxy")
	flag.StringVar(&cfg.engines, "engines", "packyard,nginx,apt-cacher-ng", "proxies to measure, comma-separated")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: 2 cold samples, 3 s warm runs, 1 fan-in run")
	flag.Parse()
	if err := start(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench: FAILED:", err)
		os.Exit(1)
	}
}

// lookDefault is name's path on PATH, else fallback.
func lookDefault(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return fallback
}

func start(cfg *config) error {
	if cfg.bin == "" {
		return fmt.Errorf("-packyard is required")
	}
	if cfg.quick {
		cfg.coldSamples, cfg.warmFor, cfg.warmRounds, cfg.fanInSamples = 2, 3*time.Second, 1, 1
	}
	var engines []engine
	for _, name := range strings.Split(cfg.engines, ",") {
		switch strings.TrimSpace(name) {
		case "packyard":
			engines = append(engines, packyardEngine(cfg.bin))
		case "nginx":
			engines = append(engines, nginxCacheEngine(cfg.nginx))
		case "apt-cacher-ng":
			engines = append(engines, aptCacherEngine(cfg.acng))
		default:
			return fmt.Errorf("-engines: unknown proxy %q (packyard, nginx, apt-cacher-ng)", name)
		}
	}
	for _, tool := range []struct{ bin, hint string }{
		{cfg.bin, "build it with go build ./cmd/packyard"},
		{cfg.nginx, "apt-get install -y nginx-light"},
		{cfg.acng, "apt-get install -y apt-cacher-ng"},
		{"apt-ftparchive", "apt-get install -y apt-utils"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			return fmt.Errorf("%s not found (%s): %w", tool.bin, tool.hint, err)
		}
	}
	var err error
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "packyard-bench-proxy-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
	}
	// Servers are stopped however the run ends.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	r := &run{cfg: cfg}
	cfg.logf("building the upstream APT repository (%d MiB package)", cfg.pkgSize>>20)
	if r.files, err = buildUpstream(filepath.Join(cfg.work, "upstream-root"), cfg.pkgSize, 1); err != nil {
		return err
	}
	if r.up, err = startUpstream(cfg.nginx, filepath.Join(cfg.work, "upstream"), filepath.Join(cfg.work, "upstream-root"), cfg.wanRate); err != nil {
		return err
	}
	defer r.up.Stop()
	done := make(chan error, 1)
	go func() { done <- r.all(ctx, engines) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("interrupted")
	}
	if err != nil {
		return err
	}
	md := r.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		return os.WriteFile(cfg.out, []byte(md), 0o644)
	}
	return nil
}

// all measures every proxy: cold first fetches, each in turn; then warm
// runs on the last cold instances, in rounds that take the proxies in turn
// (this VM's speed changes from minute to minute: each round puts the
// proxies side by side), keeping each proxy's median run; then the
// fan-in; and a direct download from the WAN upstream.
func (r *run) all(ctx context.Context, engines []engine) error {
	cfg := r.cfg
	insts := make([]*instance, len(engines))
	defer func() {
		for _, inst := range insts {
			if inst != nil {
				inst.stop()
			}
		}
	}()
	results := make([]*engineResult, len(engines))
	for i, e := range engines {
		results[i] = &engineResult{name: e.name}
		cfg.logf("%s: cold first fetches (%d empty caches)", e.name, cfg.coldSamples)
		cold, inst, err := r.measureCold(ctx, e)
		if err != nil {
			return fmt.Errorf("%s, cold: %w", e.name, err)
		}
		results[i].cold, insts[i] = cold, inst
	}
	for _, kind := range []string{"InRelease", "package"} {
		runs := make([][]*warmResult, len(engines))
		for round := range cfg.warmRounds {
			for i, e := range engines {
				var w *warmResult
				var err error
				if kind == "InRelease" {
					cfg.logf("%s: warm InRelease, %d clients for %s (round %d/%d)", e.name, cfg.metaClients, cfg.warmFor, round+1, cfg.warmRounds)
					w, err = r.measureWarm(insts[i], metaPath, r.files.meta, cfg.metaClients, cfg.warmFor)
				} else {
					cfg.logf("%s: warm package, %d clients for %s (round %d/%d)", e.name, cfg.pkgClients, cfg.warmFor, round+1, cfg.warmRounds)
					w, err = r.measureWarm(insts[i], pkgPath, r.files.pkg, cfg.pkgClients, cfg.warmFor)
				}
				if err != nil {
					return fmt.Errorf("%s, warm %s: %w", e.name, kind, err)
				}
				if kind == "InRelease" {
					cfg.logf("  %.0f req/s, p50 %s, p99 %s, proxy CPU %s per request, %d upstream requests", w.reqPerSec(), stats.MS(w.latency.P50()),
						stats.MS(w.latency.Quantile(0.99)), micros(w.cpuPerRequest()), w.upstream)
				} else {
					cfg.logf("  %.0f MiB/s, %d upstream requests", w.mibPerSec(), w.upstream)
				}
				logErrors(cfg, w)
				runs[i] = append(runs[i], w)
			}
		}
		for i := range engines {
			if kind == "InRelease" {
				results[i].warmMeta = medianRun(runs[i], (*warmResult).reqPerSec)
			} else {
				results[i].warmPkg = medianRun(runs[i], (*warmResult).mibPerSec)
			}
		}
	}
	for i, inst := range insts {
		inst.stop()
		insts[i] = nil
	}
	for i, e := range engines {
		cfg.logf("%s: cold fan-in, %d clients, upstream at %s/s per connection", e.name, cfg.fanIn, cfg.wanRate)
		var err error
		if results[i].fanIn, err = r.measureFanIn(ctx, e); err != nil {
			return fmt.Errorf("%s, fan-in: %w", e.name, err)
		}
		r.results = append(r.results, results[i])
	}
	var err error
	if r.direct, err = r.measureDirect(); err != nil {
		return fmt.Errorf("direct download: %w", err)
	}
	return nil
}

// medianRun returns the run with the median figure (the lower middle one
// of an even count); every run's failures count.
func medianRun(runs []*warmResult, figure func(*warmResult) float64) *warmResult {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *warmResult) int { return cmp.Compare(figure(a), figure(b)) })
	m := *sorted[(len(sorted)-1)/2]
	m.rounds = make([]float64, len(runs))
	for i, w := range runs {
		m.rounds[i] = figure(w)
		if w != sorted[(len(sorted)-1)/2] {
			m.errors += w.errors
			if m.firstErr == nil {
				m.firstErr = w.firstErr
			}
		}
	}
	return &m
}

func logErrors(cfg *config, w *warmResult) {
	if w.errors > 0 {
		cfg.logf("  %d failed requests; the first: %v", w.errors, w.firstErr)
	}
}
