package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/packyard/packyard/bench/internal/gnupg"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/server"
	"github.com/packyard/packyard/bench/internal/stats"
)

const benchRepo = "bench"

// mainArch is the architecture of half the corpus; with the any packages,
// its databases list three quarters of it.
const mainArch = "x86_64"

// runPackyard starts a fresh server whose default key has tool's
// algorithm (keyAlgorithm) with a pacman repository signed by that key,
// preloads base with concurrent ?wait=false PUTs, waits until the
// published databases list all of them, then times each upload of extra
// (a PUT that answers once the package is in the published generation,
// whose databases are signed).
func runPackyard(cfg *config, tool, work string, base, extra []pkgFile) (*toolRun, error) {
	ctx := context.Background()
	res := &report.Result{Tool: tool}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	algo := keyAlgorithm(tool)
	s, err := server.Start(cfg.bin, filepath.Join(work, "data"), filepath.Join(work, "packyard.log"),
		"PACKYARD_DEFAULT_KEY_ALGORITHM="+algo)
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	c := server.NewClient(s, benchRepo, cfg.workers)
	r, err := c.API.CreateRepo(ctx, benchRepo, "arch", "hosted", nil)
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	if len(r.Signing) == 0 {
		return nil, fmt.Errorf("repository %s is not signed: the benchmark measures signed publishing", benchRepo)
	}
	if err := checkKeyAlgorithm(ctx, c, r.Signing[0].Fingerprint, algo); err != nil {
		return nil, err
	}
	cfg.logf("  %s started (pid %d, %s), repository signed by %s (%s)", tool, s.PID(), s.Base, r.Signing[0].Fingerprint,
		gnupg.AlgorithmName(algo))
	keyring := filepath.Join(work, "key.gpg")
	if b, err := c.Fetch("key.gpg"); err != nil {
		return nil, err
	} else if err := os.WriteFile(keyring, b, 0o644); err != nil {
		return nil, err
	}
	check := filepath.Join(work, "check")

	fm := proc.StartForeign(s.PID())
	cpu0, _ := proc.CPUTime(s.PID())
	start := time.Now()
	if err := c.Preload(files(base), nil, cfg.workers, cfg.progress); err != nil {
		return nil, err
	}
	putsDone := time.Since(start)
	// The PUTs answered once durable; the preload ends when the published
	// databases list every package.
	for attempt := 0; ; attempt++ {
		err := verifyPackyard(c.Fetch, keyring, check, base)
		if err == nil {
			break
		}
		if time.Since(start) > cfg.preloadTimeout {
			return nil, fmt.Errorf("preload: after %s the published databases are still incomplete: %w", cfg.preloadTimeout, err)
		}
		if attempt%100 == 0 {
			cfg.progress("  %s preload: not published yet (%v); waiting", tool, err)
		}
		if err := s.Alive(); err != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.Preload = time.Since(start)
	cpu1, _ := proc.CPUTime(s.PID())
	res.PreloadNote = fmt.Sprintf("%d concurrent PUTs with `?wait=false` answered after %s; server CPU %s",
		cfg.workers, stats.Secs(putsDone), stats.Secs(cpu1-cpu0))
	cfg.logf("  %s preload of %d: %s (%s)", tool, len(base), stats.Secs(res.Preload), res.PreloadNote)

	archs := arches(append(append([]pkgFile(nil), base...), extra...))
	cpu0, _ = proc.CPUTime(s.PID())
	for i, f := range extra {
		t0 := time.Now()
		u, err := c.Upload(ctx, f.File, nil, true)
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		// Untimed: the answer means the package is published, so the
		// database of every architecture it lands in must list it.
		for _, a := range archs {
			if !landsIn(f.Arch, a) {
				continue
			}
			if err := lists(c.Fetch, a+"/"+benchRepo+".db", f.entry()); err != nil {
				return nil, fmt.Errorf("upload %d (%s, generation %d): answered, but %w", i+1, f.Name, u.Generation, err)
			}
		}
		res.Samples = append(res.Samples, d)
		cfg.progress("  %s %d/%d: %s (generation %d)", tool, i+1, len(extra), stats.MS(d), u.Generation)
	}
	cpu1, _ = proc.CPUTime(s.PID())
	res.CPUPerSample = (cpu1 - cpu0) / time.Duration(len(extra))
	res.Foreign = fm.Stop()
	if err := verifyPackyard(c.Fetch, keyring, check, append(append([]pkgFile(nil), base...), extra...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	if m, err := proc.ReadMem(s.PID()); err == nil {
		res.RSS = m.RSS
	}
	// The size reported is of the architecture most packages land in.
	primary := archs[0]
	if slices.Contains(archs, mainArch) {
		primary = mainArch
	}
	var size int64
	for _, kind := range []string{"db", "files"} {
		b, err := c.Fetch(primary + "/" + benchRepo + "." + kind)
		if err != nil {
			return nil, err
		}
		size += int64(len(b))
	}
	cfg.logf("  %s upload→visible p50 %s p95 %s mean %s (%d samples; server CPU %s per upload; VmRSS %s); databases verified, signatures (%s) with gpgv",
		tool, stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples),
		stats.MS(res.CPUPerSample), stats.MiB(res.RSS), gnupg.AlgorithmName(algo))
	return &toolRun{Result: res, dbBytes: size, dbEntries: count(append(append([]pkgFile(nil), base...), extra...), primary)}, s.Alive()
}

// checkKeyAlgorithm reports an error unless the server's key fpr has
// algorithm algo: a server that does not know
// PACKYARD_DEFAULT_KEY_ALGORITHM (built with BENCH_REV from before
// Ed25519) ignores it and signs with RSA 3072.
func checkKeyAlgorithm(ctx context.Context, c *server.Client, fpr, algo string) error {
	keys, err := c.API.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if k.Fingerprint != fpr {
			continue
		}
		if k.Algorithm == algo {
			return nil
		}
		return fmt.Errorf("the server's key %s is %q, not %s: does this packyard know PACKYARD_DEFAULT_KEY_ALGORITHM?", fpr, k.Algorithm, algo)
	}
	return fmt.Errorf("the server lists no key %s, which signs repository %s", fpr, benchRepo)
}

// count returns how many of pkgs land in the database of architecture a.
func count(pkgs []pkgFile, a string) int {
	n := 0
	for _, f := range pkgs {
		if landsIn(f.Arch, a) {
			n++
		}
	}
	return n
}
