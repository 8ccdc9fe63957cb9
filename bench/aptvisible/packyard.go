package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/server"
	"github.com/packyard/packyard/bench/internal/stats"
)

const benchRepo = "bench"

// uploadParams place every package in the one distribution and component.
var uploadParams = map[string]string{"distribution": dist, "component": component}

// runPackyard starts a fresh server with a deb repository signed by the
// server's default key, preloads base with concurrent ?wait=false PUTs,
// waits until the published indexes list all of them, then times each
// upload of extra (a PUT that answers once the package is in the
// published, signed generation).
func runPackyard(cfg *config, work string, base, extra []debFile) (*report.Result, error) {
	ctx := context.Background()
	res := &report.Result{Tool: toolPackyard}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	s, err := server.Start(cfg.bin, filepath.Join(work, "data"), filepath.Join(work, "packyard.log"))
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	c := server.NewClient(s, benchRepo, cfg.workers)
	r, err := c.API.CreateRepo(ctx, benchRepo, "deb", "hosted", nil)
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	if len(r.Signing) == 0 {
		return nil, fmt.Errorf("repository %s is not signed: the benchmark measures signed publishing", benchRepo)
	}
	cfg.logf("  packyard started (pid %d, %s), repository signed by %s", s.PID(), s.Base, r.Signing[0].Fingerprint)
	keyring := filepath.Join(work, "key.gpg")
	if b, err := c.Fetch("key.gpg"); err != nil {
		return nil, err
	} else if err := os.WriteFile(keyring, b, 0o644); err != nil {
		return nil, err
	}

	fm := proc.StartForeign(s.PID())
	cpu0, _ := proc.CPUTime(s.PID())
	start := time.Now()
	if err := c.Preload(files(base), uploadParams, cfg.workers, cfg.progress); err != nil {
		return nil, err
	}
	putsDone := time.Since(start)
	// The PUTs answered once durable; the preload ends when the published
	// indexes list every package.
	for attempt := 0; ; attempt++ {
		err := verifyPublished(c.Fetch, keyring, filepath.Join(work, "check"), base)
		if err == nil {
			break
		}
		if time.Since(start) > cfg.preloadTimeout {
			return nil, fmt.Errorf("preload: after %s the published indexes are still incomplete: %w", cfg.preloadTimeout, err)
		}
		if attempt%100 == 0 {
			cfg.progress("  packyard preload: not published yet (%v); waiting", err)
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
	cfg.logf("  packyard preload of %d: %s (%s)", len(base), stats.Secs(res.Preload), res.PreloadNote)

	state, err := indexState(c.Fetch)
	if err != nil {
		return nil, err
	}
	cpu0, _ = proc.CPUTime(s.PID())
	for i, f := range extra {
		t0 := time.Now()
		u, err := c.Upload(ctx, f.File, uploadParams, true)
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		// Untimed: the answer means the package is published, so the
		// InRelease served now must name a new index for its architecture.
		next, err := indexState(c.Fetch)
		if err != nil {
			return nil, err
		}
		if !changedFor(state, next, f.Arch) {
			return nil, fmt.Errorf("upload %d (%s, generation %d): answered, but InRelease names the same Packages for %s as before", i+1, f.Name, u.Generation, f.Arch)
		}
		state = next
		res.Samples = append(res.Samples, d)
		cfg.progress("  packyard %d/%d: %s (generation %d)", i+1, len(extra), stats.MS(d), u.Generation)
	}
	cpu1, _ = proc.CPUTime(s.PID())
	res.CPUPerSample = (cpu1 - cpu0) / time.Duration(len(extra))
	res.Foreign = fm.Stop()
	if err := verifyPublished(c.Fetch, keyring, filepath.Join(work, "check"), append(append([]debFile(nil), base...), extra...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	if m, err := proc.ReadMem(s.PID()); err == nil {
		res.RSS = m.RSS
	}
	cfg.logf("  packyard upload→visible p50 %s p95 %s mean %s (%d samples; server CPU %s per upload; VmRSS %s); InRelease verified with gpgv",
		stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples),
		stats.MS(res.CPUPerSample), stats.MiB(res.RSS))
	return res, s.Alive()
}
