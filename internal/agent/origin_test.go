package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/blobbatch"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
)

// testOrigin is a real origin (fsblob, SQLite, repo.Service, httpapi)
// behind a handler that counts the edge's blob requests and can misbehave
// like a broken network, a corrupting proxy or a buffering one.
type testOrigin struct {
	t     *testing.T
	url   string
	admin string
	edge  string // secret of the "edge" token (scope edge)
	svc   *repo.Service
	api   http.Handler

	blobs atomic.Int64 // blob requests that reached the origin
	mu    sync.Mutex
	asked map[string]int // blob requests by digest
	// corrupt is a blob digest whose bytes are altered on the way.
	corrupt atomic.Value
	// down refuses every request of the edge (connection closed).
	down atomic.Bool
	// buffer holds event streams back, as a buffering proxy does.
	buffer atomic.Bool
}

func newTestOrigin(t *testing.T) *testOrigin {
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := httpapi.NewMetrics()
	svc := repo.New(blobs, db, []format.Format{rpm.New(), deb.New(), arch.New()}, log,
		repo.Options{MaxUploadSize: 64 << 20, GenerationGrace: time.Hour, Metrics: metrics})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	o := &testOrigin{t: t, admin: strings.TrimSpace(string(secret)), svc: svc, asked: map[string]int{}}
	o.corrupt.Store("")
	o.api = httpapi.New(svc, auth.New(db), metrics, log, httpapi.Options{})
	srv := httptest.NewServer(http.HandlerFunc(o.serve))
	o.url = srv.URL
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		svc.Close()
		_ = db.Close()
		_ = blobs.Close()
	})
	_, tok, err := auth.Create(ctx, db, "edge", "edge", nil)
	if err != nil {
		t.Fatal(err)
	}
	o.edge = tok
	return o
}

func (o *testOrigin) serve(w http.ResponseWriter, r *http.Request) {
	fromEdge := r.Header.Get("Authorization") == "Bearer "+o.edge
	if fromEdge && o.down.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	if d, ok := strings.CutPrefix(r.URL.Path, "/api/v1/blobs/"); ok && fromEdge {
		o.blobs.Add(1)
		o.mu.Lock()
		o.asked[d]++
		o.mu.Unlock()
		if c := o.corrupt.Load().(string); c != "" && c == d {
			rec := httptest.NewRecorder()
			o.api.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			if len(b) > 0 {
				b[len(b)/2] ^= 0xff
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(b)
			return
		}
	}
	if r.URL.Path == "/api/v1/blobs" && r.Method == http.MethodPost && fromEdge {
		body, _ := io.ReadAll(r.Body)
		digests := strings.Fields(string(body))
		o.mu.Lock()
		for _, d := range digests {
			o.blobs.Add(1)
			o.asked[d]++
		}
		o.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		o.api.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		if c := o.corrupt.Load().(string); c != "" && rec.Code == http.StatusOK {
			_ = blobbatch.Walk(b, func(d string, data []byte) {
				if d == c && len(data) > 0 {
					data[len(data)/2] ^= 0xff
				}
			})
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
		return
	}
	if r.URL.Path == "/api/v1/events" && r.URL.Query().Get("follow") != "false" && o.buffer.Load() {
		// A buffering proxy: headers, then nothing until the stream ends.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done()
		return
	}
	o.api.ServeHTTP(w, r)
}

func (o *testOrigin) call(method, path string, body []byte) []byte {
	o.t.Helper()
	req, err := http.NewRequest(method, o.url+path, bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		o.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func (o *testOrigin) createRepo(name string) {
	o.call(http.MethodPost, "/api/v1/repos", []byte(`{"name":"`+name+`","format":"rpm"}`))
}

// upload builds and uploads an rpm and returns its path in the repository
// and its digest.
func (o *testOrigin) upload(repoName, name, version string) (string, string) {
	o.t.Helper()
	return o.put(repoName, name, version, o.build(name, version))
}

// build makes the rpm upload would send.
func (o *testOrigin) build(name, version string) []byte {
	o.t.Helper()
	b, err := rpmtest.Build(rpmtest.Spec{
		Name: name, Version: version, Release: "1", Arch: "x86_64", Summary: "agent test package " + name,
		Description: "A package for the agent tests.", License: "MIT", BuildHost: "test.example.com",
		BuildTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Files:     []rpmtest.File{{Path: "/usr/share/" + name + "/data", Body: []byte(name + version), Mode: 0o644}},
	})
	if err != nil {
		o.t.Fatal(err)
	}
	return b
}

// put uploads a built rpm and returns its path in the repository and its
// digest.
func (o *testOrigin) put(repoName, name, version string, b []byte) (string, string) {
	o.t.Helper()
	var res struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(o.call(http.MethodPut, "/api/v1/repos/"+repoName+"/packages/"+name+"-"+version+"-1.x86_64.rpm", b), &res); err != nil {
		o.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return res.Path, hex.EncodeToString(sum[:])
}

// files returns the origin's current file list of a repository.
func (o *testOrigin) files(repoName string) genList {
	o.t.Helper()
	var gl genList
	if err := json.Unmarshal(o.call(http.MethodGet, "/api/v1/repos/"+repoName+"/generations/current/files", nil), &gl); err != nil {
		o.t.Fatal(err)
	}
	return gl
}

// treeMatches reports whether every file of the origin's current
// generation is in root with the same bytes (and why not).
func (o *testOrigin) treeMatches(root, repoName string) (bool, string) {
	gl := o.files(repoName)
	for _, f := range gl.Files {
		b, err := os.ReadFile(filepath.Join(root, repoName, filepath.FromSlash(f.Path)))
		if err != nil {
			return false, err.Error()
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.Digest {
			return false, f.Path + " differs"
		}
	}
	return true, ""
}

// logBuffer collects an agent's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runningAgent is an agent running in the test.
type runningAgent struct {
	*Agent
	cfg  Config
	logs *logBuffer
	stop func()
}

func testConfig(t *testing.T, o *testOrigin) Config {
	dir := t.TempDir()
	c := Defaults()
	c.Origin, c.Name, c.Token = o.url, "edge", o.edge
	c.RootDir, c.StateDB = filepath.Join(dir, "root"), filepath.Join(dir, "state.db")
	c.FullSyncInterval, c.HeartbeatInterval, c.Listen = 0, 1, "127.0.0.1:0"
	return c
}

func startAgent(t *testing.T, cfg Config) *runningAgent {
	t.Helper()
	return startAgentWith(t, cfg, nil)
}

// startAgentWith is startAgent with setup called on the agent before it
// runs.
func startAgentWith(t *testing.T, cfg Config, setup func(*Agent)) *runningAgent {
	t.Helper()
	logs := &logBuffer{}
	a, err := New(context.Background(), cfg, Options{Version: "test", Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	ra := &runningAgent{Agent: a, cfg: cfg, logs: logs}
	ra.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		ra.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	return ra
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < 15*time.Second {
		var ok bool
		if ok, why = cond(); ok {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: not within 15 s (%s)", what, why)
	return 0
}

func (ra *runningAgent) served(repoName string) int64 {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.Agent.served[repoName]
}

func (ra *runningAgent) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + ra.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// caughtUp reports whether the agent serves the origin's current
// generation of a repository, byte for byte, and has recorded it.
func (ra *runningAgent) caughtUp(o *testOrigin, repoName string) func() (bool, string) {
	return func() (bool, string) {
		if ok, why := o.treeMatches(ra.cfg.RootDir, repoName); !ok {
			return false, why
		}
		cur := o.files(repoName).Generation
		if got := ra.served(repoName); got != cur {
			return false, fmt.Sprintf("serving generation %d, origin has %d", got, cur)
		}
		return true, ""
	}
}

// requested returns how often the edge asked for a blob.
func (o *testOrigin) requested(d string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.asked[d]
}

// settled waits until the agent has recorded a feed position (its first
// full sync is complete).
func (ra *runningAgent) settled(t *testing.T) {
	t.Helper()
	waitFor(t, "first full sync recorded", func() (bool, string) {
		n, err := ra.state.getInt(context.Background(), "last_seq")
		return err == nil && n > 0, "no feed position yet"
	})
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	d, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
