package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWatchDirSettings: watch_dir must be absolute, is created when
// missing, must be a writable directory, and belongs to one repository;
// the APT defaults are checked as names.
func TestWatchDirSettings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := func(name string, cfg map[string]any) error {
		b, _ := json.Marshal(cfg)
		_, err := e.svc.CreateRepo(ctx, RepoSpec{Name: name, Format: "line", Config: b})
		return err
	}
	taken := filepath.Join(base, "drop", "taken")
	if err := create("owner", map[string]any{"watch_dir": taken, "watch_keep_imported": true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(taken); err != nil || !fi.IsDir() {
		t.Fatalf("watch_dir not created: %v", err)
	}
	if err := os.Symlink(taken, filepath.Join(base, "alias")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(taken)
	if len(entries) != 0 {
		t.Errorf("the write probe stayed behind: %v", entries)
	}

	bad := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"relative", map[string]any{"watch_dir": "drop/x"}, "absolute path"},
		{"root", map[string]any{"watch_dir": "/"}, "root directory"},
		{"under a file", map[string]any{"watch_dir": filepath.Join(file, "x")}, "cannot create"},
		{"a file", map[string]any{"watch_dir": file}, "not a directory"},
		{"same", map[string]any{"watch_dir": taken + "/"}, `repository "owner"`},
		{"inside", map[string]any{"watch_dir": filepath.Join(taken, "sub")}, `repository "owner"`},
		{"around", map[string]any{"watch_dir": filepath.Join(base, "drop")}, `repository "owner"`},
		{"through a link", map[string]any{"watch_dir": filepath.Join(base, "alias")}, `repository "owner"`},
		{"keep not a bool", map[string]any{"watch_keep_imported": "yes"}, "watch_keep_imported"},
		{"distribution", map[string]any{"default_distribution": "no spaces"}, "default_distribution"},
		{"component", map[string]any{"default_component": "by-hash"}, "default_component"},
	}
	for _, tc := range bad {
		err := create("new", tc.cfg)
		if !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create with %s: %v, want ErrInvalidRepo saying %q", tc.name, err, tc.want)
		}
		patch, _ := json.Marshal(tc.cfg)
		_, err = e.svc.UpdateRepoConfig(ctx, "r", patch)
		if !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("patch with %s: %v, want ErrInvalidRepo saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := e.svc.GetRepo(ctx, "new"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("a refused repository exists: %v", err)
	}

	// A repository may keep its own directory and move to a free one.
	if _, err := e.svc.UpdateRepoConfig(ctx, "owner", []byte(`{"watch_dir": "`+taken+`", "default_distribution": "bookworm"}`)); err != nil {
		t.Errorf("patch keeping the same watch_dir: %v", err)
	}
	free := filepath.Join(base, "drop2", "free")
	r, err := e.svc.UpdateRepoConfig(ctx, "r", []byte(`{"watch_dir": "`+free+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := RepoSettings(r); st.WatchDir != free {
		t.Errorf("watch_dir %q after the patch", st.WatchDir)
	}
	if _, err := os.Stat(free); err != nil {
		t.Errorf("patched watch_dir not created: %v", err)
	}
	// Freed by one repository, a directory can be taken by another.
	if _, err := e.svc.UpdateRepoConfig(ctx, "owner", []byte(`{"watch_dir": null}`)); err != nil {
		t.Fatal(err)
	}
	if err := create("heir", map[string]any{"watch_dir": taken}); err != nil {
		t.Errorf("taking a freed watch_dir: %v", err)
	}
}
