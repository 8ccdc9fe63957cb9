package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/config"
)

// TestRepoWatchCommands: repo create --watch-dir, repo watch DIR
// [--keep-imported], repo watch --off, and the refusals the server
// explains.
func TestRepoWatchCommands(t *testing.T) {
	s := newServer(t)
	base := t.TempDir()
	dropA := filepath.Join(base, "a")
	r := s.run(t, "repo", "create", "el9", "--format", "rpm", "--watch-dir", dropA, "--watch-keep-imported", "-o", "json").must(t, "repo create --watch-dir")
	var created client.Repo
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	_ = json.Unmarshal(created.Config, &cfg)
	if cfg["watch_dir"] != dropA || cfg["watch_keep_imported"] != true {
		t.Errorf("config %s", created.Config)
	}
	if fi, err := os.Stat(dropA); err != nil || !fi.IsDir() {
		t.Errorf("the server did not create %s: %v", dropA, err)
	}
	r = s.run(t, "repo", "show", "el9").must(t, "repo show")
	if !strings.Contains(r.stdout, "drop folder: "+dropA+" (imported files kept in imported/)") {
		t.Errorf("repo show:\n%s", r.stdout)
	}

	if r := s.run(t, "repo", "create", "el8", "--format", "rpm", "--watch-dir", dropA); r.err == nil || !strings.Contains(r.err.Error(), `repository "el9"`) {
		t.Errorf("a second repository on the same folder: %v", r.err)
	}
	if r := s.run(t, "repo", "create", "el8", "--format", "rpm", "--watch-dir", "relative/dir"); r.err == nil || !strings.Contains(r.err.Error(), "absolute") {
		t.Errorf("a relative folder: %v", r.err)
	}

	dropB := filepath.Join(base, "b")
	r = s.run(t, "repo", "watch", "el9", dropB).must(t, "repo watch")
	if !strings.Contains(r.stdout, "el9 imports the package files copied into "+dropB) {
		t.Errorf("repo watch printed %q", r.stdout)
	}
	r = s.run(t, "repo", "show", "el9").must(t, "repo show")
	if !strings.Contains(r.stdout, "drop folder: "+dropB+"\n") {
		t.Errorf("repo show after repo watch:\n%s", r.stdout)
	}
	if r := s.run(t, "repo", "watch", "el9"); r.err == nil {
		t.Error("repo watch without a directory or --off succeeded")
	}
	s.run(t, "repo", "watch", "el9", "--off").must(t, "repo watch --off")
	r = s.run(t, "repo", "show", "el9").must(t, "repo show")
	if strings.Contains(r.stdout, "drop folder") {
		t.Errorf("repo show after --off:\n%s", r.stdout)
	}
}

// TestWatchSettings: watch_settle and watch_rescan from the file, the
// environment and flags, and their validation.
func TestWatchSettings(t *testing.T) {
	c := config.Default()
	if c.WatchSettle.Duration != 2*time.Second || c.WatchRescan.Duration != 30*time.Second {
		t.Errorf("defaults settle %s rescan %s", c.WatchSettle, c.WatchRescan)
	}
	if err := config.LoadFile(&c, writeConfig(t, "watch_rescan = \"1m\"\nwatch_settle = \"5s\"\n")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PACKYARD_WATCH_SETTLE": "300ms"}
	if err := config.LoadEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--watch-rescan", "10s"}); err != nil {
		t.Fatal(err)
	}
	if err := applyFlags(cmd.Flags(), &c); err != nil {
		t.Fatal(err)
	}
	if c.WatchSettle.Duration != 300*time.Millisecond || c.WatchRescan.Duration != 10*time.Second {
		t.Errorf("settle %s (want 300ms from the environment), rescan %s (want 10s from the flag)", c.WatchSettle, c.WatchRescan)
	}
	c.WatchSettle.Duration = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "watch_settle") {
		t.Errorf("Validate with watch_settle 0: %v", err)
	}
}
