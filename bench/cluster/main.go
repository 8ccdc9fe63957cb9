// Command cluster measures packyard on PostgreSQL + MinIO, next to the
// single-machine SQLite + fs figures of the same run: upload → visible at
// several repository sizes, aggregate upload throughput with one and two
// nodes, and read throughput of a metadata file and of a large package
// (streamed through packyard, redirected to a presigned URL, and served by
// nginx from disk). It starts PostgreSQL (initdb + pg_ctl), MinIO and
// nginx itself, on free loopback ports, and prints a markdown report.
//
//	go run ./bench/corpus -n 20051 -out C -big 1 -bigsize 20MiB
//	go run ./bench/cluster -corpus C -packyard BIN [-sizes 2000,20000] [-samples 50]
//	go run ./bench/cluster -corpus C -packyard BIN -quick
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
)

type config struct {
	corpus   string
	sizes    []int
	samples  int
	upN      int           // packages per throughput run
	clients  int           // concurrent uploads in a throughput run
	readers  int           // concurrent clients in a read run
	readFor  time.Duration // length of a read run
	bin      string
	work     string
	out      string
	pgBin    string
	minio    string
	nginx    string
	quick    bool
	backends string
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// run is one benchmark run: its settings, engines and results.
type run struct {
	cfg *config
	pg  *postgres
	mc  *minioServer
	seq int // installations started

	visible    []*visibleResult
	throughput []*throughputResult
	reads      []*readResult
	bigSize    int64
	metaSizes  map[string]int64
}

func main() {
	cfg := &config{}
	var sizes string
	home, _ := os.UserHomeDir()
	flag.StringVar(&cfg.corpus, "corpus", "", "corpus directory written by bench/corpus, with one large package (required)")
	flag.StringVar(&sizes, "sizes", "2000,20000", "repository sizes N for upload → visible, comma-separated")
	flag.IntVar(&cfg.samples, "samples", 50, "single uploads timed per N and backend")
	flag.IntVar(&cfg.upN, "uploads", 2000, "packages uploaded in each throughput run")
	flag.IntVar(&cfg.clients, "clients", 16, "concurrent uploads in a throughput run")
	flag.IntVar(&cfg.readers, "readers", 16, "concurrent clients in a read run")
	flag.DurationVar(&cfg.readFor, "read-for", 15*time.Second, "length of each read run")
	flag.StringVar(&cfg.bin, "packyard", "", "packyard binary (required)")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&cfg.pgBin, "pg-bin", "/usr/lib/postgresql/15/bin", "directory of initdb and pg_ctl")
	flag.StringVar(&cfg.minio, "minio", filepath.Join(home, "go", "bin", "minio"), "MinIO server binary")
	flag.StringVar(&cfg.nginx, "nginx", "nginx", "nginx binary")
	flag.StringVar(&cfg.backends, "visible-backends", "sqlite,postgres", "backends of the upload → visible runs")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: N = 200 and 1,000, 10 samples, 300 uploads, 3 s reads")
	flag.Parse()
	if err := start(cfg, sizes); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: FAILED:", err)
		os.Exit(1)
	}
}

func start(cfg *config, sizes string) error {
	if cfg.corpus == "" || cfg.bin == "" {
		return fmt.Errorf("-corpus and -packyard are required")
	}
	if cfg.quick {
		sizes, cfg.samples, cfg.upN, cfg.readFor = "200,1000", 10, 300, 3*time.Second
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q", f)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	sort.Ints(cfg.sizes)
	for _, tool := range []string{filepath.Join(cfg.pgBin, "initdb"), cfg.minio, cfg.nginx} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %w (PostgreSQL: apt-get install postgresql; MinIO: scripts/ installs it with go install; nginx: apt-get install nginx-light)", tool, err)
		}
	}
	largest := cfg.sizes[len(cfg.sizes)-1]
	need := max(largest+cfg.samples+1, cfg.upN)
	cfg.logf("hashing %d corpus packages", need)
	files, big, err := loadCorpus(cfg.corpus, need)
	if err != nil {
		return err
	}
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "packyard-bench-cluster-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.work)
	}

	// The engines are stopped however the run ends.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	r := &run{cfg: cfg, metaSizes: map[string]int64{}}
	cfg.logf("starting PostgreSQL and MinIO under %s", cfg.work)
	if r.pg, err = startPostgres(cfg.pgBin, filepath.Join(cfg.work, "pg")); err != nil {
		return err
	}
	defer r.pg.stop()
	if err := os.MkdirAll(filepath.Join(cfg.work, "minio"), 0o755); err != nil {
		return err
	}
	if r.mc, err = startMinIO(cfg.minio, filepath.Join(cfg.work, "minio")); err != nil {
		return err
	}
	defer r.mc.stop()
	done := make(chan error, 1)
	go func() { done <- r.all(ctx, files, big) }()
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

// all runs every measurement.
func (r *run) all(ctx context.Context, files []corpus.File, big corpus.File) error {
	cfg := r.cfg
	pm := pgMinIO(r.pg, r.mc)
	var backends []backend
	for _, b := range strings.Split(cfg.backends, ",") {
		switch strings.TrimSpace(b) {
		case "sqlite":
			backends = append(backends, sqliteFS)
		case "postgres":
			backends = append(backends, pm)
		default:
			return fmt.Errorf("-visible-backends: unknown backend %q (sqlite, postgres)", b)
		}
	}
	largest := cfg.sizes[len(cfg.sizes)-1]
	extra := files[largest : largest+cfg.samples+1]
	for _, n := range cfg.sizes {
		for _, b := range backends {
			cfg.logf("upload → visible: %s, N = %d", b.name, n)
			res, err := r.measureVisible(ctx, b, files[:n], extra)
			if err != nil {
				return fmt.Errorf("upload → visible on %s at N = %d: %w", b.name, n, err)
			}
			r.visible = append(r.visible, res)
		}
	}

	cfg.logf("upload throughput: %d packages, %d concurrent uploads", cfg.upN, cfg.clients)
	for _, setup := range []struct {
		b backend
		k int
	}{{sqliteFS, 1}, {pm, 1}, {pm, 2}} {
		res, in, err := r.measureThroughput(ctx, setup.b, setup.k, files[:cfg.upN])
		if err != nil {
			return fmt.Errorf("upload throughput: %w", err)
		}
		r.throughput = append(r.throughput, res)
		if setup.b.name == pm.name && setup.k == 2 {
			// The two-node installation, with cfg.upN packages, is the one
			// the reads run on.
			err = r.readAll(ctx, in, big)
		}
		in.stop()
		if err != nil {
			return err
		}
	}
	return nil
}
