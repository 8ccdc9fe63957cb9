package main

import (
	"bytes"
	"encoding/json"
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

// runAptly measures aptly with its own root directory: a local repository
// preloaded with `aptly repo add` of a directory of the N files and
// published once with `aptly publish repo`, signed by gpg's key; then per
// sample `aptly repo add` of the file and `aptly publish update`, both
// timed. The publish uses aptly's defaults (Packages, .gz and .bz2, and
// Contents indexes) for the corpus's two architectures.
func runAptly(cfg *config, work string, g *gnupg.Home, base, extra []debFile) (*report.Result, error) {
	res := &report.Result{Tool: toolAptly}
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(work, "aptly.conf")
	conf, _ := json.Marshal(map[string]any{"rootDir": root, "gpgProvider": "gpg", "architectures": []string{}})
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, err
	}
	aptly := func(args ...string) error {
		cmd := exec.Command("aptly", append([]string{"-config", confPath}, args...)...)
		cmd.Env = g.Env()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("aptly %s: %w\n%s", strings.Join(args[:min(len(args), 3)], " "), err, out.Bytes())
		}
		return nil
	}
	sign := []string{"-gpg-key=" + g.Fingerprint, "-batch"}
	if err := aptly("repo", "create", "-distribution="+dist, "-component="+component, benchRepo); err != nil {
		return nil, err
	}
	// The preload adds a directory of links to the N files.
	in := filepath.Join(work, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		return nil, err
	}
	for _, f := range base {
		if err := linkOrCopy(f.Path, filepath.Join(in, f.Name)); err != nil {
			return nil, err
		}
	}

	fm := proc.StartForeign(g.AgentPIDs()...)
	start := time.Now()
	if err := aptly("repo", "add", benchRepo, in); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}
	added := time.Since(start)
	cfg.progress("  aptly preload: repo add of %d took %s", len(base), stats.Secs(added))
	if err := aptly(append(append([]string{"publish", "repo", "-architectures=" + strings.Join(arches, ",")}, sign...), benchRepo)...); err != nil {
		return nil, fmt.Errorf("preload: %w", err)
	}
	res.Preload = time.Since(start)
	res.PreloadNote = fmt.Sprintf("`aptly repo add` %s + `aptly publish repo` %s", stats.Secs(added), stats.Secs(res.Preload-added))
	cfg.logf("  aptly preload of %d: %s (%s)", len(base), stats.Secs(res.Preload), res.PreloadNote)
	fetch := fileFetch(filepath.Join(root, "public"))
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
			cfg.logf("  aptly: stopping after %d samples (-anchor-budget %s used)", i, cfg.anchorBudget)
			break
		}
		t0 := time.Now()
		if err := aptly("repo", "add", benchRepo, f.Path); err != nil {
			return nil, err
		}
		tAdd := time.Since(t0)
		if err := aptly(append(append([]string{"publish", "update"}, sign...), dist)...); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		next, err := indexState(fetch)
		if err != nil {
			return nil, err
		}
		if !changedFor(state, next, f.Arch) {
			return nil, fmt.Errorf("publish update after adding %s: returned, but InRelease names the same Packages for %s as before", f.Name, f.Arch)
		}
		state = next
		res.Samples = append(res.Samples, d)
		res.Parts = append(res.Parts, tAdd)
		cfg.progress("  aptly %d/%d: %s (repo add %s)", i+1, len(extra), stats.MS(d), stats.MS(tAdd))
	}
	res.Foreign = fm.Stop()
	if err := verifyPublished(fetch, g.Pubkey, filepath.Join(work, "check"), append(append([]debFile(nil), base...), sampled...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	cfg.logf("  aptly repo add + publish update p50 %s p95 %s mean %s (%d samples; repo add alone p50 %s); InRelease verified with gpgv",
		stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples), stats.MS(res.Parts.P50()))
	return res, nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
