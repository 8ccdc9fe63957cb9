// Command profile runs packyard's upload and publish path in process (the
// repository service on the filesystem blob store, SQLite metadata and the
// rpm format, as `packyard serve` wires them, without HTTP) to show where
// the time of a bulk import and of a single upload goes: a CPU profile per
// phase and the wall time spent in each blob-store, metadata-store and
// format call.
//
//	go run ./bench/corpus -n 2050 -out C
//	go run ./bench/profile -corpus C -n 2000 -samples 50 -cpuprofile /tmp/prof
//	go tool pprof -top /tmp/prof.single.pprof
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
)

func main() {
	corpus := flag.String("corpus", "", "corpus directory written by bench/corpus (required)")
	n := flag.Int("n", 2000, "packages in the bulk import")
	samples := flag.Int("samples", 50, "single uploads after the bulk import")
	workers := flag.Int("workers", 8, "concurrent uploads during the bulk import")
	bulkWait := flag.Bool("bulk-wait", true, "bulk uploads wait until published")
	prof := flag.String("cpuprofile", "", "write CPU profiles to PREFIX.bulk.pprof and PREFIX.single.pprof and a heap profile (after the single uploads) to PREFIX.heap.pprof")
	work := flag.String("work", "", "data directory (default: a temporary directory, removed afterwards)")
	flag.Parse()
	if err := run(*corpus, *n, *samples, *workers, *bulkWait, *prof, *work); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func readManifest(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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

func run(corpus string, n, samples, workers int, bulkWait bool, prof, work string) error {
	if corpus == "" {
		return fmt.Errorf("-corpus is required")
	}
	names, err := readManifest(filepath.Join(corpus, "MANIFEST"))
	if err != nil {
		return err
	}
	if len(names) < n+samples {
		return fmt.Errorf("corpus has %d packages, need %d", len(names), n+samples)
	}
	if work == "" {
		work, err = os.MkdirTemp("", "packyard-profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	ctx := context.Background()
	t := newTimers()
	bs, err := fsblob.Open(filepath.Join(work, "blobs"))
	if err != nil {
		return err
	}
	defer bs.Close()
	db, err := sqlite.Open(ctx, filepath.Join(work, "packyard.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	met := &metrics{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := repo.New(&timedBlobs{Store: bs, t: t}, &timedMeta{Store: db, t: t},
		[]format.Format{&timedFormat{Format: rpm.New(), t: t}}, log, repo.Options{MaxUploadSize: 8 << 30, Metrics: met})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Close()
	if _, err := svc.CreateRepo(ctx, repo.RepoSpec{Name: "bench", Format: "rpm"}); err != nil {
		return err
	}
	rpmDir := filepath.Join(corpus, "rpms")
	ingest := func(name string, wait bool) (*repo.Result, error) {
		f, err := os.Open(filepath.Join(rpmDir, name))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return svc.Ingest(ctx, repo.Upload{Repo: "bench", Filename: name, Body: f, Uploader: "bench", Wait: wait})
	}

	// Bulk import.
	t.reset()
	met.reset()
	stop := startProfile(prof, "bulk")
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := ingest(names[i], bulkWait); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if !bulkWait {
		if _, err := ingest(names[n-1], true); err != nil { // identical bytes: waits for the publish
			return err
		}
	}
	bulk := time.Since(start)
	stop()
	fmt.Printf("bulk import of %d packages (%d workers, wait=%v): %s, %d generations published, publish time total %s (mean %s, max %s)\n",
		n, workers, bulkWait, bulk.Round(time.Millisecond), met.count(), met.total().Round(time.Millisecond), met.mean().Round(time.Microsecond), met.max().Round(time.Microsecond))
	t.print(os.Stdout, "bulk", 0)

	// Single uploads.
	t.reset()
	met.reset()
	stop = startProfile(prof, "single")
	var total time.Duration
	var lat []time.Duration
	for i := 0; i < samples; i++ {
		t0 := time.Now()
		if _, err := ingest(names[len(names)-samples+i], true); err != nil {
			return err
		}
		d := time.Since(t0)
		total += d
		lat = append(lat, d)
	}
	stop()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("\n%d single uploads into %d packages: mean %s, p50 %s, max %s; publish mean %s (%d generations)\n",
		samples, n, (total / time.Duration(samples)).Round(time.Microsecond), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond),
		met.mean().Round(time.Microsecond), met.count())
	t.print(os.Stdout, "single", samples)
	runtime.GC()
	if prof != "" {
		if f, err := os.Create(prof + ".heap.pprof"); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("\nGo heap in use %.1f MiB, heap sys %.1f MiB\n", float64(ms.HeapInuse)/(1<<20), float64(ms.HeapSys)/(1<<20))
	return nil
}

func startProfile(prefix, phase string) func() {
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "." + phase + ".pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// metrics records publish durations.
type metrics struct {
	mu  sync.Mutex
	pub []time.Duration
}

func (m *metrics) UploadDone(string)             {}
func (m *metrics) Visible(string, time.Duration) {}
func (m *metrics) Published(_ string, _ int64, d time.Duration) {
	m.mu.Lock()
	m.pub = append(m.pub, d)
	m.mu.Unlock()
}
func (m *metrics) reset() { m.mu.Lock(); m.pub = nil; m.mu.Unlock() }
func (m *metrics) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pub)
}
func (m *metrics) total() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Duration
	for _, d := range m.pub {
		t += d
	}
	return t
}
func (m *metrics) mean() time.Duration {
	if c := m.count(); c > 0 {
		return m.total() / time.Duration(c)
	}
	return 0
}
func (m *metrics) max() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var x time.Duration
	for _, d := range m.pub {
		x = max(x, d)
	}
	return x
}
