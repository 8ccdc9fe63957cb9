package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/config"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
)

const testTimeout = 10 * time.Second

// server is the real server stack behind an httptest server on 127.0.0.1,
// for the CLI to talk to.
type server struct {
	url   string
	data  string
	admin string
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerOpts(t, false)
}

// newServerOpts is newServer; withKeys gives the server a keyring opened
// as serve opens it, in <data>/keys with default_key "default", holding a
// copy of internal/sign/testdata/seed-key.asc as that key (so that no key
// is generated).
func newServerOpts(t *testing.T, withKeys bool) *server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "packyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	tokPath, _, err := auth.EnsureAdmin(ctx, db, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := httpapi.NewMetrics()
	ro := repo.Options{MaxUploadSize: 64 << 20, GenerationGrace: time.Hour, Metrics: metrics}
	ho := httpapi.Options{MaxUploadSize: 64 << 20}
	if withKeys {
		cfg := config.Default()
		cfg.Data = dir
		writeSeedKey(t, filepath.Join(dir, "keys"), cfg.DefaultKey)
		kr, err := openKeyring(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		ro.Keys, ro.DefaultKey = kr, cfg.DefaultKey
		ho.Keys, ho.DefaultKey = kr, cfg.DefaultKey
	}
	svc := repo.New(blobs, db, []format.Format{rpm.New(), deb.New(), arch.New()}, log, ro)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(svc, auth.New(db), metrics, log, ho))
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
		_ = db.Close()
		_ = blobs.Close()
	})
	// The CLI must not find a token anywhere the test did not put it.
	t.Setenv("PACKYARD_TOKEN", "")
	t.Setenv("PACKYARD_SERVER", "")
	t.Setenv("PACKYARD_DATA", t.TempDir())
	return &server{url: srv.URL, data: dir, admin: strings.TrimSpace(string(secret))}
}

// seedKeyPath is a fixed RSA-3072 test key.
var seedKeyPath = filepath.Join("..", "..", "internal", "sign", "testdata", "seed-key.asc")

// writeSeedKey copies the fixed test key into dir as key name, and returns
// its armored text.
func writeSeedKey(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(seedKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".asc"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// cliResult is what one run of the CLI printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCLI runs the packyard command line in process with args.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return cliResult{stdout: out.String(), stderr: errOut.String(), err: err}
}

// run runs the CLI against s with the admin token.
func (s *server) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, append([]string{"--server", s.url, "--token", s.admin}, args...)...)
}

// must fails the test unless the command succeeded.
func (r cliResult) must(t *testing.T, what string) cliResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", what, r.err, r.stdout, r.stderr)
	}
	return r
}

// writeRPM builds a package into dir and returns its path.
func writeRPM(t *testing.T, dir, name, version string) (string, []byte) {
	t.Helper()
	b, err := rpmtest.Build(rpmtest.Spec{
		Name: name, Version: version, Release: "1", Arch: "noarch", Summary: "CLI test package",
		License: "MIT", BuildTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Files: []rpmtest.File{{Path: "/usr/share/" + name + "/x", Body: []byte(name), Mode: 0o644}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+"-"+version+"-1.noarch.rpm")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}
