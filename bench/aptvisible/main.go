// Command aptvisible measures, side by side on one corpus, how long a new
// .deb takes to become visible, signed, in an APT repository of N
// packages: packyard (the real server binary; a PUT that answers once the
// package is in the published generation, whose InRelease is signed)
// against `reprepro includedeb` and `aptly repo add` + `aptly publish
// update`, both signing with a gpg key of the same kind (RSA 3072). It
// prints a markdown report (issue 3).
//
//	go run ./bench/aptvisible -corpus DIR [-sizes 2000,20000] [-samples 50]
//	go run ./bench/aptvisible -corpus DIR -quick   # N = 200 and 2,000, 10 samples
//
// The corpus is debtest.Corpus(N+samples, seed) built with debtest.Build
// into DIR once and reused; the samples are its last packages, never part
// of a preload. For each N the tools run one after another, never at the
// same time, each on a fresh directory.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/gnupg"
	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

type config struct {
	corpus         string
	seed           int64
	sizes          []int
	samples        int
	workers        int
	tools          []string
	anchorBudget   time.Duration
	preloadTimeout time.Duration
	bin            string
	src            string
	work           string
	keep           bool
	out            string
	quick          bool
	verbose        bool
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (c *config) progress(format string, args ...any) {
	if c.verbose {
		c.logf(format, args...)
	}
}

// The tools measured, in the order they run for each N.
const (
	toolPackyard = "packyard"
	toolReprepro = "reprepro"
	toolAptly    = "aptly"
)

func main() {
	cfg := &config{}
	var sizes, tools string
	flag.StringVar(&cfg.corpus, "corpus", "", "directory of the .deb corpus: built there if missing, reused otherwise (required)")
	flag.Int64Var(&cfg.seed, "seed", 1, "corpus seed (debtest.Corpus)")
	flag.StringVar(&sizes, "sizes", "2000,20000", "repository sizes N, comma-separated")
	flag.IntVar(&cfg.samples, "samples", 50, "single additions timed per tool and N")
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent PUTs during packyard's preload")
	flag.StringVar(&tools, "tools", "packyard,reprepro,aptly", "tools to measure, comma-separated")
	flag.DurationVar(&cfg.anchorBudget, "anchor-budget", 0, "stop reprepro's or aptly's samples at one N after this long (0: no limit; at least 5 run)")
	flag.DurationVar(&cfg.preloadTimeout, "preload-timeout", 30*time.Minute, "give up waiting for packyard's preload to be published after this long")
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (default: build ./cmd/packyard from -src)")
	flag.StringVar(&cfg.src, "src", ".", "packyard module root, for building the binary")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep each tool's directory")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: N = 200 and 2,000, 10 samples")
	flag.BoolVar(&cfg.verbose, "v", false, "log every sample")
	flag.Parse()
	if err := run(cfg, sizes, tools); err != nil {
		fmt.Fprintln(os.Stderr, "aptvisible: FAILED:", err)
		os.Exit(1)
	}
}

func run(cfg *config, sizes, tools string) error {
	if cfg.corpus == "" {
		return fmt.Errorf("-corpus is required")
	}
	if cfg.quick {
		sizes = "200,2000"
		cfg.samples = 10
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q", f)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	sort.Ints(cfg.sizes)
	if cfg.samples < 1 {
		return fmt.Errorf("-samples must be at least 1")
	}
	for _, t := range strings.Split(tools, ",") {
		switch t = strings.TrimSpace(t); t {
		case toolPackyard, toolReprepro, toolAptly:
			cfg.tools = append(cfg.tools, t)
		default:
			return fmt.Errorf("unknown tool %q (packyard, reprepro or aptly)", t)
		}
		if t != toolPackyard {
			if _, err := exec.LookPath(t); err != nil {
				return fmt.Errorf("%s not found (apt-get install %s): %w", t, t, err)
			}
		}
	}
	for _, t := range []string{"gpg", "gpgv"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found (apt-get install gnupg): %w", t, err)
		}
	}

	var err error
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "packyard-aptbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
	}
	if cfg.bin == "" && slices.Contains(cfg.tools, toolPackyard) {
		cfg.bin = filepath.Join(cfg.work, "packyard")
		cfg.logf("building packyard into %s", cfg.bin)
		cmd := exec.Command("go", "build", "-o", cfg.bin, "./cmd/packyard")
		cmd.Dir = cfg.src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build packyard: %w", err)
		}
	}

	largest := cfg.sizes[len(cfg.sizes)-1]
	t0 := time.Now()
	corpus, err := loadCorpus(cfg, cfg.corpus, largest+cfg.samples, cfg.seed)
	if err != nil {
		return err
	}
	var bytes int64
	for _, f := range corpus {
		bytes += f.Size
	}
	cfg.logf("corpus: %d packages, %.1f MB, ready after %s", len(corpus), float64(bytes)/1e6, stats.Secs(time.Since(t0)))
	extra := corpus[largest:]

	g, err := gnupg.New(filepath.Join(cfg.work, "gnupg"), gnupg.RSA3072)
	if err != nil {
		return err
	}
	defer g.Close()
	cfg.logf("gpg key for reprepro and aptly: %s (RSA 3072, GNUPGHOME %s)", g.Fingerprint, g.Dir)

	rep := &summary{cfg: cfg, started: time.Now(), corpusBytes: bytes, corpusFiles: len(corpus)}
	for _, n := range cfg.sizes {
		base := corpus[:n]
		cfg.logf("N = %d", n)
		row := report.Row{N: n, Results: map[string]*report.Result{}}
		for _, t := range cfg.tools {
			dir := filepath.Join(cfg.work, fmt.Sprintf("%s-%d", t, n))
			var r *report.Result
			switch t {
			case toolPackyard:
				r, err = runPackyard(cfg, dir, base, extra)
			case toolReprepro:
				r, err = runReprepro(cfg, dir, g, base, extra)
			case toolAptly:
				r, err = runAptly(cfg, dir, g, base, extra)
			}
			if err != nil {
				return fmt.Errorf("%s at N = %d: %w", t, n, err)
			}
			row.Results[t] = r
			if !cfg.keep {
				_ = os.RemoveAll(dir)
			}
		}
		rep.rows = append(rep.rows, row)
	}
	rep.finished = time.Now()
	md := rep.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if rep.missed > 0 {
		cfg.logf("%d target(s) missed (see the report)", rep.missed)
	}
	return nil
}
