package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// anchorResult holds createrepo_c's figures for one N.
type anchorResult struct {
	Full, FullNoDB       time.Duration
	FullMaxRSSKB         int64
	Update, UpdateNoDB   samples
	UpdateMaxRSSKB       int64
	UpdateSamplesWanted  int
	UpdateSamplesLimited bool
	Foreign              *foreignMeter
}

// runCreaterepo measures createrepo_c on base (full) and then adds each of
// extra with --update, on two copies of the directory: one with the sqlite
// databases (createrepo_c's default) and one with --no-database.
func runCreaterepo(cfg *config, work string, base, extra []string) (*anchorResult, error) {
	res := &anchorResult{UpdateSamplesWanted: len(extra)}
	dirDB := filepath.Join(work, "db")
	dirNoDB := filepath.Join(work, "nodb")
	for _, d := range []string{dirDB, dirNoDB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		for _, f := range base {
			if err := linkOrCopy(filepath.Join(cfg.rpmDir, f), filepath.Join(d, f)); err != nil {
				return nil, err
			}
		}
	}
	syncFS()
	fm := startForeign(0)

	var err error
	var ru *syscall.Rusage
	if res.Full, ru, err = timeCmd("createrepo_c", "-q", dirDB); err != nil {
		return nil, err
	}
	res.FullMaxRSSKB = ru.Maxrss
	if res.FullNoDB, _, err = timeCmd("createrepo_c", "-q", "--no-database", dirNoDB); err != nil {
		return nil, err
	}
	cfg.logf("  createrepo_c full: %s (max RSS %s); --no-database: %s", secs(res.Full), mib(res.FullMaxRSSKB), secs(res.FullNoDB))

	start := time.Now()
	for i, f := range extra {
		if cfg.anchorBudget > 0 && i >= 5 && time.Since(start) > cfg.anchorBudget {
			res.UpdateSamplesLimited = true
			cfg.logf("  createrepo_c --update: stopping after %d samples (time budget %s used)", i, cfg.anchorBudget)
			break
		}
		if err := copyFile(filepath.Join(cfg.rpmDir, f), filepath.Join(dirDB, f)); err != nil {
			return nil, err
		}
		d, ru, err := timeCmd("createrepo_c", "-q", "--update", dirDB)
		if err != nil {
			return nil, err
		}
		res.Update = append(res.Update, d)
		res.UpdateMaxRSSKB = max(res.UpdateMaxRSSKB, ru.Maxrss)
		if err := copyFile(filepath.Join(cfg.rpmDir, f), filepath.Join(dirNoDB, f)); err != nil {
			return nil, err
		}
		d, _, err = timeCmd("createrepo_c", "-q", "--update", "--no-database", dirNoDB)
		if err != nil {
			return nil, err
		}
		res.UpdateNoDB = append(res.UpdateNoDB, d)
		cfg.progress("  createrepo_c --update %d/%d: %s (--no-database %s)", i+1, len(extra), secs(res.Update[i]), secs(d))
	}
	res.Foreign = fm.stop()
	// Sanity: the last --update produced metadata naming every package.
	want := len(base) + len(res.Update)
	for _, d := range []string{dirDB, dirNoDB} {
		n, err := countLocalPrimary(d)
		if err != nil {
			return nil, err
		}
		if n != want {
			return nil, fmt.Errorf("createrepo_c metadata in %s lists %d packages, want %d", d, n, want)
		}
	}
	cfg.logf("  createrepo_c --update p50 %s p95 %s (%d samples); --no-database p50 %s p95 %s",
		secs(res.Update.p50()), secs(res.Update.p95()), len(res.Update), secs(res.UpdateNoDB.p50()), secs(res.UpdateNoDB.p95()))
	return res, nil
}

func countLocalPrimary(dir string) (int, error) {
	md, err := os.ReadFile(filepath.Join(dir, "repodata", "repomd.xml"))
	if err != nil {
		return 0, err
	}
	href, err := primaryHref(md)
	if err != nil {
		return 0, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, href))
	if err != nil {
		return 0, err
	}
	p, err := decode(href, raw)
	if err != nil {
		return 0, err
	}
	ids, n := primaryPkgids(p)
	if len(ids) != n {
		return 0, fmt.Errorf("%s: %d packages but %d distinct pkgids", href, n, len(ids))
	}
	return n, nil
}

// timeCmd runs a command and returns its wall time and resource usage.
func timeCmd(name string, args ...string) (time.Duration, *syscall.Rusage, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, nil, fmt.Errorf("%s %v: %w", name, args, err)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		ru = &syscall.Rusage{}
	}
	return d, ru, nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

// copyFile copies src to dst (a new inode, as a build farm's upload would
// make).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFS() { syscall.Sync() }
