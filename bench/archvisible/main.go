// Command archvisible measures, side by side on one corpus, how long a new
// package takes to become visible, signed, in a pacman repository of N
// packages: packyard (the real server binary; a PUT that answers once the
// package is in the published generation, whose databases are signed)
// against `repo-add -s` adding the package to a database of the same N
// packages, signing with a gpg key of the same algorithm. Each side runs
// with packyard's default key algorithm, RSA 3072 (packyard, repo-add),
// and with Ed25519 (packyard-ed25519, repo-add-ed25519), whose signatures
// cost a fraction of RSA's; repo-add also runs, as a further anchor, with
// TMPDIR on tmpfs (repo-add-tmpfs, RSA 3072). It prints a markdown report
// (issue 6).
//
//	go run ./bench/archvisible -corpus DIR [-sizes 500,20000] [-samples 50]
//	go run ./bench/archvisible -corpus DIR -quick   # N = 100 and 500, 10 samples
//
// The corpus is archtest.Corpus(N+samples, seed) built with archtest.Build
// into DIR once and reused; the samples are its last packages, never part
// of a preload. For each N the tools run one after another, never at the
// same time, each on a fresh directory. Each packyard tool preloads its
// own server; the repo-add tools share one preload, signed with the RSA
// key, which the others start from a copy of (every sample signs the
// database anew, with the tool's key).
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
	"syscall"
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
	tmpfs          string
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

// The tools measured, in the order of the default -tools.
const (
	toolPackyard        = "packyard"
	toolPackyardEd25519 = "packyard-ed25519"
	toolRepoAdd         = "repo-add"
	toolRepoAddEd25519  = "repo-add-ed25519"
	toolRepoAddTmpfs    = "repo-add-tmpfs"

	defaultTools = toolPackyard + "," + toolPackyardEd25519 + "," + toolRepoAdd + "," + toolRepoAddEd25519 + "," + toolRepoAddTmpfs
)

// repoAddEd25519MaxN is the largest N repo-add-ed25519 runs at. Beyond it
// its samples cost what repo-add's do (about 25 s each at 20,000), for
// nothing: signing is a negligible share of repo-add's time, as the rows
// of repo-add and repo-add-ed25519 at the smaller N show.
const repoAddEd25519MaxN = 500

// isPackyard reports whether tool t is a packyard server (not an anchor).
func isPackyard(t string) bool { return t == toolPackyard || t == toolPackyardEd25519 }

// keyAlgorithm is the algorithm of the key tool t signs with.
func keyAlgorithm(t string) string {
	if t == toolPackyardEd25519 || t == toolRepoAddEd25519 {
		return gnupg.Ed25519
	}
	return gnupg.RSA3072
}

// runsAt reports whether tool t runs at N = n.
func runsAt(t string, n int) bool { return t != toolRepoAddEd25519 || n <= repoAddEd25519MaxN }

// toolRun is one tool's figures at one N and the size of what a sample
// rewrites.
type toolRun struct {
	*report.Result
	// dbBytes is the size of the package and files databases after the
	// samples (packyard: of the first architecture), which list
	// dbEntries packages.
	dbBytes   int64
	dbEntries int
}

func main() {
	cfg := &config{}
	var sizes, tools string
	flag.StringVar(&cfg.corpus, "corpus", "", "directory of the package corpus: built there if missing, reused otherwise (required)")
	flag.Int64Var(&cfg.seed, "seed", 1, "corpus seed (archtest.Corpus)")
	flag.StringVar(&sizes, "sizes", "500,20000", "repository sizes N, comma-separated")
	flag.IntVar(&cfg.samples, "samples", 50, "single additions timed per tool and N")
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent PUTs during packyard's preload")
	flag.StringVar(&tools, "tools", defaultTools, "tools to measure, comma-separated ("+strings.ReplaceAll(defaultTools, ",", ", ")+")")
	flag.DurationVar(&cfg.anchorBudget, "anchor-budget", 0, "stop each repo-add tool's samples at one N after this long (0: no limit; at least 5 run)")
	flag.DurationVar(&cfg.preloadTimeout, "preload-timeout", 30*time.Minute, "give up waiting for packyard's preload to be published after this long")
	flag.StringVar(&cfg.tmpfs, "tmpfs", "/dev/shm", "tmpfs directory for repo-add-tmpfs's TMPDIR")
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (default: build ./cmd/packyard from -src)")
	flag.StringVar(&cfg.src, "src", ".", "packyard module root, for building the binary")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep each tool's directory")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: N = 100 and 500, 10 samples")
	flag.BoolVar(&cfg.verbose, "v", false, "log every sample")
	flag.Parse()
	if err := run(cfg, sizes, tools); err != nil {
		fmt.Fprintln(os.Stderr, "archvisible: FAILED:", err)
		os.Exit(1)
	}
}

func run(cfg *config, sizes, tools string) error {
	if cfg.corpus == "" {
		return fmt.Errorf("-corpus is required")
	}
	if cfg.quick {
		sizes = "100,500"
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
		case toolPackyard, toolPackyardEd25519, toolRepoAdd, toolRepoAddEd25519, toolRepoAddTmpfs:
			if slices.Contains(cfg.tools, t) {
				return fmt.Errorf("tool %q given twice", t)
			}
			cfg.tools = append(cfg.tools, t)
		default:
			return fmt.Errorf("unknown tool %q (%s)", t, strings.ReplaceAll(defaultTools, ",", ", "))
		}
	}
	anchors := slices.ContainsFunc(cfg.tools, func(t string) bool { return !isPackyard(t) })
	ed25519Anchor := slices.Contains(cfg.tools, toolRepoAddEd25519) && runsAt(toolRepoAddEd25519, cfg.sizes[0])
	need := []string{"gpg", "gpgv"}
	if anchors {
		need = append(need, "repo-add", "bsdtar")
	}
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found (apt-get install %s): %w", t, map[string]string{"gpg": "gnupg", "gpgv": "gpgv",
				"repo-add": "pacman-package-manager", "bsdtar": "libarchive-tools"}[t], err)
		}
	}
	if slices.Contains(cfg.tools, toolRepoAddTmpfs) && fsType(cfg.tmpfs) != "tmpfs" {
		return fmt.Errorf("-tmpfs %s is not a tmpfs (it is %s); give one or leave out %s", cfg.tmpfs, fsType(cfg.tmpfs), toolRepoAddTmpfs)
	}

	var err error
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "packyard-archbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
	}
	if cfg.bin == "" && slices.ContainsFunc(cfg.tools, isPackyard) {
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
	pkgs, err := loadCorpus(cfg, cfg.corpus, largest+cfg.samples, cfg.seed)
	if err != nil {
		return err
	}
	var bytes int64
	for _, f := range pkgs {
		bytes += f.Size
	}
	cfg.logf("corpus: %d packages, %.1f MB, ready after %s", len(pkgs), float64(bytes)/1e6, stats.Secs(time.Since(t0)))
	extra := pkgs[largest:]

	sum := &summary{cfg: cfg, started: time.Now(), corpusBytes: bytes, corpusFiles: len(pkgs), tmpdir: os.TempDir()}
	// g signs repo-add's preload and the samples of the RSA tools, gEd
	// those of repo-add-ed25519.
	var g, gEd *gnupg.Home
	if anchors {
		if g, err = gnupg.New(filepath.Join(cfg.work, "gnupg"), gnupg.RSA3072); err != nil {
			return err
		}
		defer g.Close()
		cfg.logf("gpg key for repo-add: %s (%s, GNUPGHOME %s)", g.Fingerprint, gnupg.AlgorithmName(g.Algorithm), g.Dir)
	}
	if ed25519Anchor {
		if gEd, err = gnupg.New(filepath.Join(cfg.work, "gnupg-ed25519"), gnupg.Ed25519); err != nil {
			return err
		}
		defer gEd.Close()
		cfg.logf("gpg key for %s: %s (%s, GNUPGHOME %s)", toolRepoAddEd25519, gEd.Fingerprint, gnupg.AlgorithmName(gEd.Algorithm), gEd.Dir)
	}
	for _, n := range cfg.sizes {
		base := pkgs[:n]
		cfg.logf("N = %d", n)
		row := report.Row{N: n, Results: map[string]*report.Result{}}
		runs := map[string]*toolRun{}
		dir := func(t string) string { return filepath.Join(cfg.work, fmt.Sprintf("%s-%d", t, n)) }
		var preload time.Duration
		var preloadNote string
		for _, t := range cfg.tools {
			if !runsAt(t, n) {
				cfg.logf("  %s: not run at N = %d (it runs at N ≤ %d)", t, n, repoAddEd25519MaxN)
				continue
			}
			var r *toolRun
			switch t {
			case toolPackyard, toolPackyardEd25519:
				r, err = runPackyard(cfg, t, dir(t), base, extra)
			case toolRepoAdd, toolRepoAddEd25519, toolRepoAddTmpfs:
				if preloadNote == "" {
					// One preload for all: the other variants start from
					// a copy, taken before any sample.
					var calls int
					var cached bool
					if preload, calls, cached, err = preloadRepoAdd(cfg, dir(toolRepoAdd), g, base); err != nil {
						return fmt.Errorf("repo-add at N = %d: %w", n, err)
					}
					preloadNote = fmt.Sprintf("%d `repo-add -q -s -k KEY R.db.tar.gz FILE…` call(s), default TMPDIR, %s key",
						calls, gnupg.AlgorithmName(g.Algorithm))
					if cached {
						preloadNote += "; built by an earlier run on this corpus and copied (the time is that run's)"
					}
					cfg.logf("  repo-add preload of %d: %s (%s)", n, stats.Secs(preload), preloadNote)
					for _, c := range []string{toolRepoAddEd25519, toolRepoAddTmpfs} {
						if slices.Contains(cfg.tools, c) && runsAt(c, n) {
							if err := copyRepo(dir(toolRepoAdd), dir(c)); err != nil {
								return err
							}
						}
					}
				}
				a := repoAddRun{tool: t, work: dir(t), g: g, preloadKey: g.Pubkey, preload: preload, preloadNote: preloadNote}
				switch t {
				case toolRepoAdd:
					r, err = runRepoAdd(cfg, a, base, extra)
				case toolRepoAddEd25519:
					a.g = gEd
					a.preloadNote = fmt.Sprintf("a copy of repo-add's database, signed with its %s key, taken before any sample",
						gnupg.AlgorithmName(g.Algorithm))
					r, err = runRepoAdd(cfg, a, base, extra)
				case toolRepoAddTmpfs:
					r, err = runRepoAddTmpfs(cfg, a, base, extra)
				}
			}
			if err != nil {
				return fmt.Errorf("%s at N = %d: %w", t, n, err)
			}
			row.Results[t], runs[t] = r.Result, r
		}
		if !cfg.keep {
			// repo-add's directory holds the shared preload even when
			// repo-add itself is not measured.
			for _, t := range append(slices.Clone(cfg.tools), toolRepoAdd) {
				_ = os.RemoveAll(dir(t))
			}
		}
		sum.rows = append(sum.rows, row)
		sum.runs = append(sum.runs, runs)
	}
	sum.finished = time.Now()
	md := sum.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if sum.missed > 0 {
		cfg.logf("%d target(s) missed (see the report)", sum.missed)
	}
	return nil
}

// runRepoAddTmpfs is runRepoAdd with TMPDIR in a fresh directory on
// cfg.tmpfs, on a.work, which holds a copy of repo-add's preloaded
// database.
func runRepoAddTmpfs(cfg *config, a repoAddRun, base, extra []pkgFile) (*toolRun, error) {
	tmp, err := os.MkdirTemp(cfg.tmpfs, "packyard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	a.tmp = tmp
	a.preloadNote = "the same database as repo-add's, copied before its samples"
	return runRepoAdd(cfg, a, base, extra)
}

// fsType names the filesystem of path ("ext4", "tmpfs", or its magic
// number in hex).
func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case 0xef53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}
