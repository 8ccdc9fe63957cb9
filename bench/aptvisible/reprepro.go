package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/gnupg"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

// repreproBatch is how many files one preload `includedeb` gets: with
// names relative to the corpus directory (~40 bytes) 5,000 stay well
// under the kernel's limit on a command line (ARG_MAX, 2 MiB with the
// default stack limit).
const repreproBatch = 5000

// runReprepro measures `reprepro includedeb` on a base directory of its
// own whose distribution is signed with gpg's key (SignWith), so that each
// call ends with signed, visible indexes (reprepro exports the changed
// indexes and signs Release before it exits). The indexes are reprepro's
// default: Packages and Packages.gz.
func runReprepro(cfg *config, work string, g *gnupg.Home, base, extra []debFile) (*report.Result, error) {
	res := &report.Result{Tool: toolReprepro}
	conf := filepath.Join(work, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, err
	}
	distributions := fmt.Sprintf("Codename: %s\nComponents: %s\nArchitectures: %s\nSignWith: %s\n",
		dist, component, strings.Join(arches, " "), g.Fingerprint)
	if err := os.WriteFile(filepath.Join(conf, "distributions"), []byte(distributions), 0o644); err != nil {
		return nil, err
	}
	reprepro := func(dir string, args ...string) error {
		cmd := exec.Command("reprepro", append([]string{"-b", work}, args...)...)
		cmd.Dir = dir
		cmd.Env = g.Env()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("reprepro %s: %w\n%s", strings.Join(args[:min(len(args), 3)], " "), err, out.Bytes())
		}
		return nil
	}

	fm := proc.StartForeign(g.AgentPIDs()...)
	start := time.Now()
	calls := 0
	for i := 0; i < len(base); i += repreproBatch {
		args := []string{"includedeb", dist}
		for _, f := range base[i:min(len(base), i+repreproBatch)] {
			args = append(args, filepath.Base(f.Path))
		}
		if err := reprepro(filepath.Dir(base[i].Path), args...); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		calls++
		cfg.progress("  reprepro preload: %d/%d after %s", min(len(base), i+repreproBatch), len(base), stats.Secs(time.Since(start)))
	}
	res.Preload = time.Since(start)
	res.PreloadNote = fmt.Sprintf("%d `includedeb` call(s) of up to %s files", calls, stats.Thousands(repreproBatch))
	cfg.logf("  reprepro preload of %d: %s (%s)", len(base), stats.Secs(res.Preload), res.PreloadNote)
	fetch := fileFetch(work)
	if err := verifyPublished(fetch, g.Pubkey, filepath.Join(work, "check"), base); err != nil {
		return nil, fmt.Errorf("after the preload: %w", err)
	}

	state, err := indexState(fetch)
	if err != nil {
		return nil, err
	}
	sampled := extra
	start = time.Now()
	for i, f := range extra {
		if cfg.anchorBudget > 0 && i >= 5 && time.Since(start) > cfg.anchorBudget {
			sampled = extra[:i]
			cfg.logf("  reprepro: stopping after %d samples (-anchor-budget %s used)", i, cfg.anchorBudget)
			break
		}
		t0 := time.Now()
		if err := reprepro(work, "includedeb", dist, f.Path); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		next, err := indexState(fetch)
		if err != nil {
			return nil, err
		}
		if !changedFor(state, next, f.Arch) {
			return nil, fmt.Errorf("includedeb %s: returned, but InRelease names the same Packages for %s as before", f.Name, f.Arch)
		}
		state = next
		res.Samples = append(res.Samples, d)
		cfg.progress("  reprepro %d/%d: %s", i+1, len(extra), stats.MS(d))
	}
	res.Foreign = fm.Stop()
	if err := verifyPublished(fetch, g.Pubkey, filepath.Join(work, "check"), append(append([]debFile(nil), base...), sampled...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	cfg.logf("  reprepro includedeb p50 %s p95 %s mean %s (%d samples); InRelease verified with gpgv",
		stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples))
	return res, nil
}
