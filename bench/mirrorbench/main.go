// Command mirrorbench measures packyard's mirror repositories (issue 7)
// next to the tools that mirror the same upstreams, in the same run: an
// initial sync of a 2,000-package RPM upstream (next to `dnf reposync`) and
// of a 2,000-package APT upstream (next to `aptly mirror update`), then an
// incremental sync after 10 packages were added upstream. Each sync is
// timed wall-clock, with its peak resident memory. The upstreams are
// signed repositories served by nginx on a loopback port; they are built
// once (createrepo_c, apt-ftparchive) and kept in -cache.
//
//	go run ./bench/mirrorbench -packyard BIN -cache DIR [-n 2000 -samples 5]
//	go run ./bench/mirrorbench -packyard BIN -cache DIR -quick -engines anchors
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type config struct {
	bin     string
	nginx   string
	cache   string
	work    string
	out     string
	n       int
	extra   int
	samples int
	seed    int64
	engines []string
	formats []string
	verify  bool
	quick   bool
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Engine names.
const (
	engPackyard = "packyard"
	engDnf      = "dnf reposync"
	engAptly    = "aptly"
)

// anchorOf is the tool packyard is compared with for each format.
var anchorOf = map[string]string{"rpm": engDnf, "deb": engAptly}

func main() {
	cfg := &config{}
	var engines, formats string
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (required unless -engines leaves packyard out)")
	flag.StringVar(&cfg.nginx, "nginx", lookDefault("nginx", "/usr/sbin/nginx"), "nginx binary (the upstream)")
	flag.StringVar(&cfg.cache, "cache", "", "directory that keeps the corpus, the upstream key and the upstream trees between runs (required)")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.IntVar(&cfg.n, "n", 2000, "packages of each upstream at the initial sync")
	flag.IntVar(&cfg.extra, "extra", 10, "packages added upstream before the incremental sync")
	flag.IntVar(&cfg.samples, "samples", 5, "initial + incremental syncs per tool and format (each from an empty mirror, the tools in turn); the report gives the median")
	flag.Int64Var(&cfg.seed, "seed", 1, "corpus seed")
	flag.StringVar(&engines, "engines", "packyard,dnf,aptly", "tools to measure, comma-separated: packyard, dnf, aptly; anchors = dnf,aptly")
	flag.StringVar(&formats, "formats", "rpm,deb", "upstreams to mirror, comma-separated: rpm, deb")
	flag.BoolVar(&cfg.verify, "verify", true, "check after every sync that the mirror holds every package (file count and bytes, or the published indexes)")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: 200 packages, 1 sample")
	flag.Parse()
	if cfg.quick {
		if !flagSet("n") {
			cfg.n = 200
		}
		if !flagSet("samples") {
			cfg.samples = 1
		}
	}
	for _, e := range strings.Split(engines, ",") {
		switch strings.TrimSpace(e) {
		case "packyard":
			cfg.engines = append(cfg.engines, engPackyard)
		case "dnf", "dnf reposync":
			cfg.engines = append(cfg.engines, engDnf)
		case "aptly":
			cfg.engines = append(cfg.engines, engAptly)
		case "anchors":
			cfg.engines = append(cfg.engines, engDnf, engAptly)
		case "all":
			cfg.engines = append(cfg.engines, engPackyard, engDnf, engAptly)
		default:
			fatal(fmt.Errorf("-engines: unknown tool %q (packyard, dnf, aptly, anchors, all)", e))
		}
	}
	for _, f := range strings.Split(formats, ",") {
		switch f = strings.TrimSpace(f); f {
		case "rpm", "deb":
			cfg.formats = append(cfg.formats, f)
		default:
			fatal(fmt.Errorf("-formats: unknown format %q (rpm, deb)", f))
		}
	}
	if err := start(cfg); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mirrorbench: FAILED:", err)
	os.Exit(1)
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// lookDefault is name's path on PATH, else fallback.
func lookDefault(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return fallback
}

func (c *config) uses(engine string) bool {
	for _, e := range c.engines {
		if e == engine {
			return true
		}
	}
	return false
}

func (c *config) hasFormat(f string) bool {
	for _, x := range c.formats {
		if x == f {
			return true
		}
	}
	return false
}

// checkTools fails early, with the package to install, for a missing tool.
func checkTools(cfg *config) error {
	tools := []struct{ bin, hint string }{
		{cfg.nginx, "apt-get install -y nginx-light"},
	}
	if cfg.hasFormat("rpm") {
		tools = append(tools, struct{ bin, hint string }{"createrepo_c", "apt-get install -y createrepo-c"})
	}
	if cfg.hasFormat("deb") {
		tools = append(tools, struct{ bin, hint string }{"apt-ftparchive", "apt-get install -y apt-utils"})
	}
	if cfg.uses(engDnf) && cfg.hasFormat("rpm") {
		tools = append(tools, struct{ bin, hint string }{"dnf", "apt-get install -y dnf dnf-plugins-core"})
	}
	if cfg.uses(engAptly) && cfg.hasFormat("deb") {
		tools = append(tools, struct{ bin, hint string }{"aptly", "apt-get install -y aptly"},
			struct{ bin, hint string }{"gpgv", "apt-get install -y gpgv"})
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("%s not found (%s): %w", t.bin, t.hint, err)
		}
	}
	if cfg.uses(engDnf) && cfg.hasFormat("rpm") {
		if out, err := exec.Command("dnf", "reposync", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--download-metadata") {
			return fmt.Errorf("`dnf reposync` is not available (apt-get install -y dnf-plugins-core): %v\n%s", err, out)
		}
	}
	if cfg.uses(engPackyard) {
		if cfg.bin == "" {
			return fmt.Errorf("-packyard is required to measure packyard (or -engines anchors)")
		}
		if err := checkPackyard(cfg.bin); err != nil {
			return err
		}
	}
	return nil
}

func start(cfg *config) error {
	if cfg.cache == "" {
		return fmt.Errorf("-cache is required")
	}
	if len(cfg.engines) == 0 || len(cfg.formats) == 0 {
		return fmt.Errorf("nothing to measure")
	}
	if err := checkTools(cfg); err != nil {
		return err
	}
	var err error
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "packyard-bench-mirror-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
	}
	if cfg.cache, err = filepath.Abs(cfg.cache); err != nil {
		return err
	}
	if cfg.work, err = filepath.Abs(cfg.work); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	r := &run{cfg: cfg, results: map[string]*result{}}
	t0 := time.Now()
	if r.up, err = prepareUpstream(cfg); err != nil {
		return err
	}
	cfg.logf("upstreams ready in %s: %d + %d packages each, rpm %s + %s, deb %s + %s",
		time.Since(t0).Round(time.Millisecond), cfg.n, cfg.extra, mb(r.up.rpmBytesInit), mb(r.up.rpmBytesExtra), mb(r.up.debBytesInit), mb(r.up.debBytesExtra))
	if r.srv, err = serveUpstream(cfg, r.up); err != nil {
		return err
	}
	defer r.srv.Stop()

	done := make(chan error, 1)
	go func() { done <- r.all(ctx) }()
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

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
