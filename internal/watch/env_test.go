package watch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/deb/debtest"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
)

// testTimeout bounds every wait of a test.
const testTimeout = 15 * time.Second

// testSettle is the settle time of most tests: short, since the writes
// they make are single calls.
const testSettle = 150 * time.Millisecond

// env is a real repository service (fsblob and SQLite in a temporary
// directory, the rpm and deb formats and a stand-in pacman format) with a
// watcher started on demand.
type env struct {
	t       *testing.T
	svc     *repo.Service
	db      *sqlite.Store
	log     *slog.Logger
	metrics *countMetrics
	base    string // parent of the drop folders
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "packyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc := repo.New(blobs, db, []format.Format{rpm.New(), deb.New(), fakeArch{}}, log, repo.Options{MaxUploadSize: 8 << 20, GenerationGrace: time.Hour})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); db.Close(); blobs.Close() })
	return &env{t: t, svc: svc, db: db, log: log, metrics: newCountMetrics(), base: t.TempDir()}
}

// createRepo creates a repository whose drop folder is <base>/<name>
// (returned), with extra configuration.
func (e *env) createRepo(name, fmtName string, cfg map[string]any) string {
	e.t.Helper()
	dir := filepath.Join(e.base, name)
	all := map[string]any{"watch_dir": dir}
	for k, v := range cfg {
		all[k] = v
	}
	b, _ := json.Marshal(all)
	if _, err := e.svc.CreateRepo(context.Background(), repo.RepoSpec{Name: name, Format: fmtName, Config: b}); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// start starts a watcher over svc (the env's service when nil); Close
// runs at cleanup.
func (e *env) start(svc Service, opts Options) *Watcher {
	e.t.Helper()
	if svc == nil {
		svc = e.svc
	}
	if opts.Settle == 0 {
		opts.Settle = testSettle
	}
	if opts.Rescan == 0 {
		opts.Rescan = time.Hour // notifications only, unless a test says otherwise
	}
	opts.Metrics = e.metrics
	w := New(svc, e.db, e.log, opts)
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Close)
	return w
}

// packages returns the live packages of a repository.
func (e *env) packages(name string) []meta.Package {
	e.t.Helper()
	r, err := e.svc.GetRepo(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	ps, err := e.db.ListPackages(context.Background(), r.ID, meta.PackageQuery{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// waitPackages waits until a repository holds n packages and returns them.
func (e *env) waitPackages(name string, n int) []meta.Package {
	e.t.Helper()
	var ps []meta.Package
	waitFor(e.t, fmt.Sprintf("%d packages in %s", n, name), func() bool {
		ps = e.packages(name)
		return len(ps) >= n
	})
	if len(ps) != n {
		e.t.Fatalf("%s holds %d packages, want %d: %+v", name, len(ps), n, ps)
	}
	return ps
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGone waits until a file no longer exists.
func waitGone(t *testing.T, path string) {
	t.Helper()
	waitFor(t, path+" to go", func() bool {
		_, err := os.Lstat(path)
		return errors.Is(err, fs.ErrNotExist)
	})
}

func exist(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rpmFile builds a valid RPM whose bytes depend on payload.
func rpmFile(t *testing.T, name, version, payload string) []byte {
	t.Helper()
	b, err := rpmtest.Build(rpmtest.Spec{
		Name: name, Version: version, Release: "1", Arch: "x86_64",
		Summary: "drop folder test package " + name, Description: "Built by the drop folder tests.",
		License: "MIT", BuildHost: "test.example.com", BuildTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Files: []rpmtest.File{{Path: "/usr/share/" + name + "/data.txt", Body: []byte(payload), Mode: 0o644}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// debFile builds a valid .deb.
func debFile(t *testing.T, name, version string) []byte {
	t.Helper()
	b, err := debtest.Build(debtest.Spec{
		Package: name, Version: version, Architecture: "amd64", Maintainer: "T <t@example.com>",
		Description: name + " test package", Compression: "gz", ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Files: []debtest.File{{Path: "./usr/share/doc/" + name + "/README", Body: []byte(name), Mode: 0o644}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countMetrics counts WatchFile calls.
type countMetrics struct {
	mu sync.Mutex
	n  map[string]int // "repo/result"
}

func newCountMetrics() *countMetrics { return &countMetrics{n: map[string]int{}} }

func (m *countMetrics) WatchFile(repo, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[repo+"/"+result]++
}

func (m *countMetrics) get(repo, result string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[repo+"/"+result]
}

// want fails the test unless the counts of a repository are exactly
// these (results not named must be 0).
func (m *countMetrics) want(t *testing.T, repo string, want map[string]int) {
	t.Helper()
	for _, r := range []string{ResultImported, ResultIdentical, ResultRejected, ResultRetry} {
		if got := m.get(repo, r); got != want[r] {
			t.Errorf("%s: %d files %s, want %d", repo, got, r, want[r])
		}
	}
}

// fakeArch stands in for the pacman format (being written elsewhere): a
// package file is "name version\n" plus any payload, named
// *.pkg.tar.zst; its fragment records the signature it came with.
type fakeArch struct{}

func (fakeArch) Name() string { return meta.FormatArch }

func (fakeArch) Parse(r io.Reader, filename string, params format.UploadParams) (*format.Package, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) != 2 || !strings.Contains(filename, ".pkg.tar.") {
		return nil, fmt.Errorf("%w: not a stand-in pacman package", format.ErrInvalidPackage)
	}
	return &format.Package{
		Identity: format.Identity{Name: f[0], Version: f[1], Arch: "any"},
		Path:     "any/" + filename, Data: params[paramSignature],
	}, nil
}

func (fakeArch) Scope(*format.Package, format.UploadParams) (string, error) { return "", nil }

func (fakeArch) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	return map[string][]byte{"db": []byte(p.Name + " sig=" + p.Data.(string) + "\n")}, nil
}

func (fakeArch) Compare(a, b format.Identity) int { return strings.Compare(a.Version, b.Version) }

func (fakeArch) Streams([]*format.Entry, format.PublishOptions) []format.Stream {
	return []format.Stream{{
		Name: "db", Fragment: "db", Encodings: []format.Encoding{format.Gzip},
		Header: func(int) []byte { return nil },
	}}
}

func (fakeArch) Finish(built []format.Built, _ format.PublishOptions) ([]format.File, error) {
	gz := built[0].Encoded[format.Gzip]
	return []format.File{{Path: "any/test.db", SHA256: gz.SHA256, Size: gz.Size}}, nil
}
