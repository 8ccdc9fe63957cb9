// Command visible measures, side by side on one corpus, how long a new
// package takes to become visible to RPM clients: createrepo_c (full runs
// and --update) against packyard (bulk import and single uploads through
// the real server binary), plus packyard's memory with a large repository
// and during a large upload. It prints a markdown report.
//
//	go run ./bench/corpus -n 20050 -out C -big 1 -bigsize 1GiB
//	go run ./bench/visible -corpus C [-sizes 2000,20000] [-samples 50]
//	go run ./bench/visible -corpus C -quick   # N = 200 and 2,000, 10 samples
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type config struct {
	corpus       string
	rpmDir       string
	sizes        []int
	samples      int
	anchorLarge  int
	anchorBudget time.Duration
	workers      int
	bulkWait     bool
	bulkWaitUpTo int
	bulkTimeout  time.Duration
	bin          string
	src          string
	work         string
	keep         bool
	big          string
	out          string
	quick        bool
	verbose      bool
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (c *config) progress(format string, args ...any) {
	if c.verbose {
		c.logf(format, args...)
	}
}

func main() {
	cfg := &config{}
	var sizes string
	flag.StringVar(&cfg.corpus, "corpus", "", "corpus directory written by bench/corpus (required)")
	flag.StringVar(&sizes, "sizes", "2000,20000", "repository sizes N, comma-separated")
	flag.IntVar(&cfg.samples, "samples", 50, "single uploads (and createrepo_c --update runs) per N")
	flag.IntVar(&cfg.anchorLarge, "anchor-samples-large", 0, "createrepo_c --update runs at the largest N (0: -samples)")
	flag.DurationVar(&cfg.anchorBudget, "anchor-budget", 0, "stop createrepo_c --update runs at one N after this long (0: no limit; at least 5 run)")
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent PUTs during the bulk import")
	flag.BoolVar(&cfg.bulkWait, "bulk-wait", false, "bulk PUTs wait until their package is published (the API's and packyard push's default); by default they use ?wait=false (packyard push --no-wait)")
	flag.IntVar(&cfg.bulkWaitUpTo, "bulk-wait-upto", 2000, "also measure a bulk import with waiting PUTs, on a separate server, for N up to this (its cost grows with N²)")
	flag.DurationVar(&cfg.bulkTimeout, "bulk-timeout", 30*time.Minute, "give up a bulk import after this long")
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (default: build ./cmd/packyard from -src)")
	flag.StringVar(&cfg.src, "src", ".", "packyard module root, for building the binary")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory")
	flag.StringVar(&cfg.big, "big", "", "large package to upload at the largest N (default: the first file of CORPUS/big/, if any; \"none\" to skip)")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: N = 200 and 2,000, 10 samples")
	flag.BoolVar(&cfg.verbose, "v", false, "log every sample")
	flag.Parse()
	if err := run(cfg, sizes); err != nil {
		fmt.Fprintln(os.Stderr, "visible: FAILED:", err)
		os.Exit(1)
	}
}

func run(cfg *config, sizes string) error {
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
	cfg.rpmDir = filepath.Join(cfg.corpus, "rpms")
	manifest, err := readManifest(filepath.Join(cfg.corpus, "MANIFEST"))
	if err != nil {
		return err
	}
	largest := cfg.sizes[len(cfg.sizes)-1]
	if len(manifest) < largest+cfg.samples {
		return fmt.Errorf("corpus has %d packages; need %d (largest N %d + %d samples): generate it with go run ./bench/corpus -n %d",
			len(manifest), largest+cfg.samples, largest, cfg.samples, largest+cfg.samples)
	}
	if _, err := exec.LookPath("createrepo_c"); err != nil {
		return fmt.Errorf("createrepo_c not found: %w", err)
	}
	switch cfg.big {
	case "none":
		cfg.big = ""
	case "":
		m, _ := filepath.Glob(filepath.Join(cfg.corpus, "big", "*.rpm"))
		if len(m) > 0 {
			sort.Strings(m)
			cfg.big = m[0]
		}
	}

	if cfg.work == "" {
		cfg.work, err = os.MkdirTemp("", "packyard-bench-")
		if err != nil {
			return err
		}
		if !cfg.keep {
			defer os.RemoveAll(cfg.work)
		}
	}
	if cfg.bin == "" {
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

	// The extra packages (uploaded one by one) are the last of the corpus,
	// never part of any base set.
	extra := manifest[len(manifest)-cfg.samples:]
	rep := &report{cfg: cfg, started: time.Now()}
	for _, n := range cfg.sizes {
		base := manifest[:n]
		cfg.logf("N = %d", n)
		anchorExtra := extra
		if n == largest && cfg.anchorLarge > 0 && cfg.anchorLarge < len(extra) {
			anchorExtra = extra[:cfg.anchorLarge]
		}
		dir := filepath.Join(cfg.work, fmt.Sprintf("createrepo-%d", n))
		a, err := runCreaterepo(cfg, dir, base, anchorExtra)
		if err != nil {
			return fmt.Errorf("createrepo_c at N=%d: %w", n, err)
		}
		if !cfg.keep {
			_ = os.RemoveAll(dir)
		}
		big := ""
		if n == largest {
			big = cfg.big
		}
		dir = filepath.Join(cfg.work, fmt.Sprintf("packyard-%d", n))
		p, err := runPackyard(cfg, dir, base, extra, big)
		if err != nil {
			return fmt.Errorf("packyard at N=%d: %w", n, err)
		}
		if !cfg.keep {
			_ = os.RemoveAll(dir)
		}
		rep.rows = append(rep.rows, row{N: n, Anchor: a, Py: p})
	}
	rep.finished = time.Now()
	md := rep.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if rep.failedChecks > 0 {
		cfg.logf("%d target(s) missed (see the report)", rep.failedChecks)
	}
	return nil
}

func readManifest(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read corpus manifest: %w (generate the corpus with go run ./bench/corpus)", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
