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

// repoDB and repoFiles are the databases repo-add writes, in the
// directory of its tool, with a .sig beside each and the symlinks R.db
// and R.files (and their .sig).
const (
	repoDB    = "R.db.tar.gz"
	repoFiles = "R.files.tar.gz"
)

// repoAddArgMax bounds the bytes of file names given to one preload
// repo-add call, well under the kernel's limit on a command line (ARG_MAX,
// 2 MiB with the default stack limit); 20,050 names of this corpus take
// about 1.1 MB, so the preload is one call.
const repoAddArgMax = 1_500_000

// repoAdd runs repo-add signing with g's key, with TMPDIR tmp (the
// environment's when "") and the working directory dir.
func repoAdd(g *gnupg.Home, tmp, dir string, args ...string) error {
	cmd := exec.Command("repo-add", append([]string{"-q", "-s", "-k", g.Fingerprint}, args...)...)
	cmd.Dir = dir
	cmd.Env = g.Env()
	if tmp != "" {
		cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("repo-add %s: %w\n%s", strings.Join(args[:min(len(args), 3)], " "), err, out.Bytes())
	}
	// repo-add only warns when gpg fails to sign; its output names it.
	if bytes.Contains(out.Bytes(), []byte("Failed to sign")) || bytes.Contains(out.Bytes(), []byte("WARNING")) {
		return fmt.Errorf("repo-add %s: %s", strings.Join(args[:min(len(args), 3)], " "), out.Bytes())
	}
	return nil
}

// preloadRepoAdd creates, in work, a database of base signed with g's key,
// with as few repo-add calls as the command line allows (one for this
// corpus up to 20,000 packages), in the default TMPDIR. It returns the
// time taken and the number of calls. The database is kept beside the
// corpus and later runs start from a copy of it (cached is then true, and
// the time is the one the first run took): repo-add needs about half an
// hour for 20,000 packages, and the samples only need its result. Samples
// never depend on the preload's signature, which repo-add replaces.
func preloadRepoAdd(cfg *config, work string, g *gnupg.Home, base []pkgFile) (took time.Duration, calls int, cached bool, err error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return 0, 0, false, err
	}
	cache := fmt.Sprintf("%s.repo-add-%d", strings.TrimRight(cfg.corpus, "/"), len(base))
	if b, err := os.ReadFile(filepath.Join(cache, "preload")); err == nil {
		if _, err := fmt.Sscanf(string(b), "%d %d", &took, &calls); err == nil {
			if err := copyRepo(cache, work); err != nil {
				return 0, 0, false, err
			}
			_ = os.Remove(filepath.Join(work, "preload"))
			// Sign the copy with this run's key, as repo-add would have.
			for _, f := range []string{repoDB, repoFiles} {
				p := filepath.Join(work, f)
				if _, err := g.Run("--batch", "--yes", "-u", g.Fingerprint, "--detach-sign", "--no-armor", "-o", p+".sig", p); err != nil {
					return 0, 0, false, fmt.Errorf("sign the cached preload: %w", err)
				}
			}
			return took, calls, true, nil
		}
	}
	db := filepath.Join(work, repoDB)
	start := time.Now()
	for i := 0; i < len(base); {
		// File names relative to the corpus directory keep the command
		// line short.
		args, n := []string{db}, 0
		for ; i < len(base) && n < repoAddArgMax; i++ {
			args = append(args, base[i].Name)
			n += len(base[i].Name) + 1 + 8
		}
		if err := repoAdd(g, "", filepath.Dir(base[0].Path), args...); err != nil {
			return 0, 0, false, fmt.Errorf("preload: %w", err)
		}
		calls++
		cfg.progress("  repo-add preload: %d/%d after %s", i, len(base), stats.Secs(time.Since(start)))
	}
	took = time.Since(start)
	// Keep a copy for later runs, whole or not at all.
	tmp := cache + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := copyRepo(work, tmp); err != nil {
		return 0, 0, false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "preload"), fmt.Appendf(nil, "%d %d\n", took, calls), 0o644); err != nil {
		return 0, 0, false, err
	}
	_ = os.RemoveAll(cache)
	if err := os.Rename(tmp, cache); err != nil {
		return 0, 0, false, err
	}
	return took, calls, false, nil
}

// copyRepo copies the database files of src (regular files and symlinks)
// into a new directory dst.
func copyRepo(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(from)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case e.Type().IsRegular():
			b, err := os.ReadFile(from)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// repoAddRun is what one repo-add tool's run at one N works on.
type repoAddRun struct {
	tool string
	// work already holds the signed database of the N packages, whose
	// signatures verify with the keyring preloadKey.
	work, preloadKey string
	// tmp is the TMPDIR repo-add unpacks the databases into ("" for the
	// default).
	tmp string
	// g signs the samples.
	g *gnupg.Home
	// preload and preloadNote are the preload's figures, reported as the
	// tool's.
	preload     time.Duration
	preloadNote string
}

// runRepoAdd times `repo-add -q -s -k KEY R.db.tar.gz FILE` for each
// package of extra on a.work, signing with a.g's key; base is what the
// database lists before.
func runRepoAdd(cfg *config, a repoAddRun, base, extra []pkgFile) (*toolRun, error) {
	tool, work, g := a.tool, a.work, a.g
	res := &report.Result{Tool: tool, Preload: a.preload, PreloadNote: a.preloadNote}
	fetch := fileFetch(work)
	check := filepath.Join(work, "..", filepath.Base(work)+"-check")
	defer os.RemoveAll(check)
	if err := verifyRepoAdd(fetch, a.preloadKey, check, base); err != nil {
		return nil, fmt.Errorf("after the preload: %w", err)
	}
	db := filepath.Join(work, repoDB)
	fm := proc.StartForeign(g.AgentPIDs()...)
	sampled := extra
	start := time.Now()
	for i, f := range extra {
		if cfg.anchorBudget > 0 && i >= 5 && time.Since(start) > cfg.anchorBudget {
			sampled = extra[:i]
			cfg.logf("  %s: stopping after %d samples (-anchor-budget %s used)", tool, i, cfg.anchorBudget)
			break
		}
		t0 := time.Now()
		if err := repoAdd(g, a.tmp, work, db, f.Path); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		// Untimed: the database written must list the package.
		if err := lists(fetch, repoDB, f.entry()); err != nil {
			return nil, fmt.Errorf("%s %s: returned, but %w", tool, f.Name, err)
		}
		res.Samples = append(res.Samples, d)
		cfg.progress("  %s %d/%d: %s", tool, i+1, len(extra), stats.MS(d))
	}
	res.Foreign = fm.Stop()
	if err := verifyRepoAdd(fetch, g.Pubkey, check, append(append([]pkgFile(nil), base...), sampled...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	var size int64
	for _, name := range []string{repoDB, repoFiles} {
		fi, err := os.Stat(filepath.Join(work, name))
		if err != nil {
			return nil, err
		}
		size += fi.Size()
	}
	cfg.logf("  %s p50 %s p95 %s mean %s (%d samples); %s and %s verified, signatures (%s) with gpgv",
		tool, stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples), repoDB, repoFiles,
		gnupg.AlgorithmName(g.Algorithm))
	return &toolRun{Result: res, dbBytes: size, dbEntries: len(base) + len(sampled)}, nil
}

// verifyRepoAdd checks a repo-add database: R.db.tar.gz and
// R.files.tar.gz verify against keyring and list exactly want.
func verifyRepoAdd(fetch fetchFunc, keyring, tmp string, want []pkgFile) error {
	if err := verifyDB(fetch, keyring, tmp, repoDB, want, false); err != nil {
		return err
	}
	return verifyDB(fetch, keyring, tmp, repoFiles, want, true)
}
