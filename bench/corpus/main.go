// Command corpus writes the synthetic RPM corpus the benchmarks run on.
//
//	go run ./bench/corpus -n 20050 -seed 1 -out DIR [-big 1 -bigsize 1GiB]
//
// It writes DIR/rpms/*.rpm (N small packages with realistic headers, a pure
// function of the seed and their index), DIR/MANIFEST (their file names in
// index order, one a line) and, with -big K, DIR/big/*.rpm (K packages of
// one random file of -bigsize bytes each). Small packages are built in
// parallel. The default generator (bench/internal/gen) gives each package
// four files of 0.2–8 KB, so that the corpus is about the size of the
// rpmbuild-built corpus the anchors were measured on (~12 KB a package);
// -generator rpmtest uses rpmtest.Corpus instead. A big package whose stamp file says it was built with the same
// seed and size is kept instead of being built again.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/bench/internal/gen"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

func main() {
	n := flag.Int("n", 2000, "number of small packages")
	seed := flag.Int64("seed", 1, "corpus seed")
	out := flag.String("out", "", "output directory (required)")
	big := flag.Int("big", 0, "number of large packages")
	bigSize := flag.String("bigsize", "1GiB", "payload size of each large package (e.g. 64MiB, 1GiB)")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "parallel builders")
	generator := flag.String("generator", "bench", "spec generator: bench (bench/internal/gen: ~12 KB packages, like the rpmbuild corpus of the anchors) or rpmtest (rpmtest.Corpus: ~2 KB packages)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "corpus: -out is required")
		os.Exit(2)
	}
	size, err := ParseSize(*bigSize)
	if err != nil {
		fatal(err)
	}
	var specOf func(i int) rpmtest.Spec
	switch *generator {
	case "bench":
		specOf = func(i int) rpmtest.Spec { return gen.Spec(*seed, i) }
	case "rpmtest":
		specs := rpmtest.Corpus(*n, *seed)
		specOf = func(i int) rpmtest.Spec { return specs[i] }
	default:
		fatal(fmt.Errorf("unknown generator %q", *generator))
	}
	if err := writeSmall(*out, *n, specOf, *workers); err != nil {
		fatal(err)
	}
	if *big > 0 {
		if err := writeBig(*out, *big, *seed, size); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "corpus:", err)
	os.Exit(1)
}

func writeSmall(out string, n int, specOf func(int) rpmtest.Spec, workers int) error {
	dir := filepath.Join(out, "rpms")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	names := make([]string, n)
	var next, bytes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				s := specOf(i)
				b, err := rpmtest.Build(s)
				if err != nil {
					errs <- fmt.Errorf("package %d: %w", i, err)
					return
				}
				names[i] = gen.FileName(s)
				if err := os.WriteFile(filepath.Join(dir, names[i]), b, 0o644); err != nil {
					errs <- err
					return
				}
				bytes.Add(int64(len(b)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	seen := make(map[string]bool, n)
	var m strings.Builder
	for _, nm := range names {
		if seen[nm] {
			return fmt.Errorf("generator produced %s twice", nm)
		}
		seen[nm] = true
		m.WriteString(nm)
		m.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(out, "MANIFEST"), []byte(m.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("corpus: %d packages, %.1f MB, in %s (%d workers)\n", n, float64(bytes.Load())/1e6, time.Since(start).Round(time.Millisecond), workers)
	return nil
}

func writeBig(out string, k int, seed int64, size int64) error {
	dir := filepath.Join(out, "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < k; i++ {
		path := filepath.Join(dir, fmt.Sprintf("bigpayload%d-1.0-1.x86_64.rpm", i))
		stampPath := path + ".stamp"
		stamp := fmt.Sprintf("seed=%d size=%d\n", seed, size)
		if old, err := os.ReadFile(stampPath); err == nil && string(old) == stamp {
			if _, err := os.Stat(path); err == nil {
				fmt.Printf("corpus: kept %s (%s)\n", path, strings.TrimSpace(stamp))
				continue
			}
		}
		start := time.Now()
		if err := gen.BuildBig(path, seed, i, size); err != nil {
			return fmt.Errorf("big package %d: %w", i, err)
		}
		if err := os.WriteFile(stampPath, []byte(stamp), 0o644); err != nil {
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		fmt.Printf("corpus: wrote %s (%d bytes) in %s\n", path, fi.Size(), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// ParseSize reads sizes like 1048576, 64MiB, 1GiB, 500MB.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf string
		mul int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suf) {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, u.suf)), 64)
			if err != nil {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(v * float64(u.mul)), nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v, nil
}
