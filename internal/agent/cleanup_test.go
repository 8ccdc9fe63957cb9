package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestAgentCleanupWithoutFullSync: with full syncs off, files whose grace
// period has passed and a crash's temporary files are deleted all the same,
// and the served generation is untouched.
func TestAgentCleanupWithoutFullSync(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	cfg.FullSyncInterval = 0
	cfg.GracePeriod = 1
	a := startAgentWith(t, cfg, func(a *Agent) { a.cleanupEvery = 50 * time.Millisecond })
	root := cfg.RootDir
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)
	old := o.files("el")
	o.upload("el", "b", "1.0")
	waitFor(t, "new generation", a.caughtUp(o, "el"))
	cur := map[string]bool{}
	for _, f := range o.files("el").Files {
		cur[f.Path] = true
	}
	var gone []string
	for _, f := range old.Files {
		if !cur[f.Path] {
			gone = append(gone, filepath.Join(root, "el", f.Path))
		}
	}
	if len(gone) == 0 {
		t.Fatal("the new generation replaced no file of the old one")
	}
	stale := filepath.Join(root, "el", "repodata", tmpPrefix+"crashed.tmp")
	if err := os.WriteFile(stale, []byte("half a download"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The sweep deletes the files, then their state rows: both are
	// waited for.
	waitFor(t, "expired and temporary files deleted and forgotten", func() (bool, string) {
		for _, p := range append([]string{stale}, gone...) {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				return false, p + " is still there"
			}
		}
		rows, err := a.state.files(context.Background(), "el")
		if err != nil {
			return false, err.Error()
		}
		for key, row := range rows {
			if row.RetiredAt != 0 {
				return false, key + ": still recorded as retired after its deletion"
			}
		}
		return true, ""
	})
	if ok, why := o.treeMatches(root, "el"); !ok {
		t.Errorf("the served generation was damaged: %s", why)
	}
}

// TestAgentSymlinkedRoot: root_dir and a repository's directory may be
// symbolic links. The full sync cleans the tree where it really is, keeps
// both links and a link to a directory of managed files, removes an
// unmanaged link inside the repository without touching what it points
// to, and leaves a link at the top of root_dir that is not a repository
// alone.
func TestAgentSymlinkedRoot(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	dir := t.TempDir()
	real, repoData, outside := filepath.Join(dir, "real"), filepath.Join(dir, "el-data"), filepath.Join(dir, "outside")
	precious := filepath.Join(outside, "precious")
	for _, d := range []string{real, repoData, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(precious, []byte("not the agent's"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.RootDir = filepath.Join(dir, "root")
	mustSymlink(t, real, cfg.RootDir)                             // root_dir -> real
	mustSymlink(t, repoData, filepath.Join(real, "el"))           // root_dir/el -> el-data
	mustSymlink(t, outside, filepath.Join(real, "other"))         // not a repository
	keep := filepath.Join(cfg.RootDir, "el", "RPM-GPG-KEY-local") // under the configured path
	cfg.KeepFiles = []string{keep}
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)

	unmanaged := filepath.Join(repoData, "Packages", "dropped-in.rpm")
	stray := filepath.Join(real, "stray.txt")
	for _, p := range []string{unmanaged, stray, keep} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	innerLink := filepath.Join(repoData, "linked")
	mustSymlink(t, outside, innerLink)
	// A directory of managed files moved elsewhere and linked back.
	movedIndex := filepath.Join(dir, "repodata-elsewhere")
	if err := os.Rename(filepath.Join(repoData, "repodata"), movedIndex); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, movedIndex, filepath.Join(repoData, "repodata"))
	res, err := a.FullSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Unmanaged != 3 {
		t.Errorf("full sync deleted %d unmanaged files, want 3 (a file, a stray file at the top, a link): %+v", res.Unmanaged, res)
	}
	for _, p := range []string{unmanaged, stray, innerLink} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("unmanaged %s survived: %v", p, err)
		}
	}
	for _, p := range []string{cfg.RootDir, filepath.Join(real, "el"), filepath.Join(real, "other"), filepath.Join(repoData, "repodata")} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("symbolic link %s: %v, %v; want it kept", p, fi, err)
		}
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("a file a link pointed to was deleted: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("keep_files entry deleted: %v", err)
	}
	if ok, why := o.treeMatches(cfg.RootDir, "el"); !ok {
		t.Errorf("after the full sync: %s", why)
	}
	if ok, why := o.treeMatches(real, "el"); !ok {
		t.Errorf("the tree is not where root_dir points: %s", why)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestApplySyncsDirectories: once a generation is in place, every
// directory a file was renamed into is fsynced, and so is every directory
// above it up to root_dir (those created for the generation are durable
// only then).
func TestApplySyncsDirectories(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	var mu sync.Mutex
	synced := map[string]int{}
	a := startAgentWith(t, cfg, func(a *Agent) {
		a.fsyncDir = func(d string) error {
			mu.Lock()
			synced[d]++
			mu.Unlock()
			return fsyncDir(d)
		}
	})
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)
	root, err := filepath.EvalSymlinks(cfg.RootDir)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range o.files("el").Files {
		for d := filepath.Dir(filepath.Join(root, "el", f.Path)); ; d = filepath.Dir(d) {
			if synced[d] == 0 {
				t.Errorf("%s (above %s) was not fsynced", d, f.Path)
			}
			if d == root {
				break
			}
		}
	}
}
