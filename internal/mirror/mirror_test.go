package mirror

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
)

type env struct {
	svc   *repo.Service
	db    *sqlite.Store
	blobs blob.Store
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
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	svc := repo.New(blobs, db, []format.Format{rpm.New(), deb.New()}, log, repo.Options{GenerationGrace: time.Hour})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); db.Close(); blobs.Close() })
	return &env{svc: svc, db: db, blobs: blobs}
}

func (e *env) mirror(t *testing.T, name string, cfg map[string]any) {
	t.Helper()
	all := map[string]any{"mode": "exact", "upstream_unsigned": true}
	for k, v := range cfg {
		all[k] = v
	}
	b, _ := json.Marshal(all)
	if _, err := e.svc.CreateRepo(context.Background(), repo.RepoSpec{Name: name, Format: "rpm", Kind: meta.KindMirror, Config: b}); err != nil {
		t.Fatal(err)
	}
}

// TestSchedule: the scheduler syncs a mirror with a sync_interval when
// its last sync started longer ago than the interval, and no other.
func TestSchedule(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer up.Close()
	e.mirror(t, "sched", map[string]any{"upstreams": []string{up.URL}, "sync_interval": "1h"})
	e.mirror(t, "manual", map[string]any{"upstreams": []string{up.URL}})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := New(Options{Repos: e.svc, Meta: e.db, Blobs: e.blobs, Now: clock, Backoff: time.Millisecond})
	ctx := context.Background()
	syncs := func(name string) []meta.MirrorSync {
		t.Helper()
		r, err := e.svc.GetRepo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// Wait for a running sync to end.
		for {
			if _, _, ok := m.Progress(name); !ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
		l, err := e.db.ListSyncs(ctx, r.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	m.due(ctx)
	if l := syncs("sched"); len(l) != 1 || l[0].Status != meta.SyncFailed || !strings.Contains(l[0].Error, "repodata/repomd.xml") || !strings.Contains(l[0].Error, "not found upstream") {
		t.Fatalf("first scheduled sync: %+v", l)
	}
	if l := syncs("manual"); len(l) != 0 {
		t.Errorf("a mirror without sync_interval was synced: %+v", l)
	}
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	m.due(ctx)
	if l := syncs("sched"); len(l) != 1 {
		t.Errorf("synced again before the interval passed: %d syncs", len(l))
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	m.due(ctx)
	if l := syncs("sched"); len(l) != 2 {
		t.Errorf("not synced again once the interval passed: %d syncs", len(l))
	}
	if hits.Load() == 0 {
		t.Errorf("the upstream was never asked")
	}
}

// TestGetRetriesAndFailsOver: an upstream answering 503 is retried with
// backoff, then the next upstream is used; bytes that do not match the
// signed digest are not retried on the same upstream.
func TestGetRetriesAndFailsOver(t *testing.T) {
	e := newEnv(t)
	var flaky, good atomic.Int64
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flaky.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good.Add(1)
		if strings.HasSuffix(r.URL.Path, "/long") {
			io.WriteString(w, "toolongbody")
			return
		}
		if strings.HasSuffix(r.URL.Path, "/two") {
			// The first answer breaks off after 3 of 9 bytes.
			w.Header().Set("Content-Length", "9")
			if good.Load() == 1 {
				io.WriteString(w, "hel")
				panic(http.ErrAbortHandler)
			}
			io.WriteString(w, "hello two")
			return
		}
		io.WriteString(w, "hello")
	}))
	defer b.Close()
	m := New(Options{Repos: e.svc, Meta: e.db, Blobs: e.blobs, Backoff: time.Millisecond})
	s := &syncer{m: m, bases: []string{a.URL, b.URL}, prog: &Progress{}}
	ctx := context.Background()
	sum := string(blob.DigestOf([]byte("hello")))
	n, err := s.fetchBlob(ctx, "x/file", sum, 5, nil)
	if err != nil || n != 5 {
		t.Fatalf("fetchBlob: %d %v", n, err)
	}
	if flaky.Load() != retries || good.Load() != 1 {
		t.Errorf("requests: %d to the failing upstream (want %d), %d to the good one", flaky.Load(), retries, good.Load())
	}
	// Stored: not fetched again.
	if n, err := s.fetchBlob(ctx, "x/file", sum, 5, nil); err != nil || n != 0 || good.Load() != 1 {
		t.Errorf("second fetch of a stored blob: %d %v, %d requests", n, err, good.Load())
	}
	// Wrong digest: refused, nothing stored, one request per upstream.
	good.Store(0)
	wrong := string(blob.DigestOf([]byte("other")))
	if _, err := s.fetchBlob(ctx, "x/other", wrong, 5, nil); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("wrong digest: %v", err)
	}
	if good.Load() != 1 {
		t.Errorf("a digest mismatch was retried: %d requests", good.Load())
	}
	if _, err := e.blobs.Stat(ctx, blob.Digest(wrong)); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("refused bytes stored: %v", err)
	}
	// The digests a StoredParser takes are those of the bytes stored,
	// not of an attempt that broke off.
	good.Store(0)
	dg := newDigester()
	two := []byte("hello two")
	if n, err := s.fetchBlob(ctx, "x/two", string(blob.DigestOf(two)), 9, dg); err != nil || n != 9 {
		t.Fatalf("fetchBlob after a broken answer: %d %v", n, err)
	}
	if good.Load() != 2 {
		t.Errorf("%d requests for a file whose first answer broke off, want 2", good.Load())
	}
	m5 := md5.Sum(two)
	want := format.Digests{MD5: hex.EncodeToString(m5[:]), SHA256: "s"}
	if got := dg.sums("s"); *got != want {
		t.Errorf("digests %+v, want %+v", *got, want)
	}
	// Size past what the metadata gives: refused.
	if _, err := s.fetchBlob(ctx, "x/long", string(blob.DigestOf([]byte("toolongbody"))), 3, nil); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("oversized file: %v", err)
	}
}

// TestResolveMirrors: a mirrorlist's http and https lines become upstream
// base URLs, in order; comments and other schemes are skipped; an empty
// list is an error.
func TestResolveMirrors(t *testing.T) {
	e := newEnv(t)
	body := "# mirrors\nhttp://a.example/os/\nrsync://b.example/os/\n\nhttps://c.example/os/\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			io.WriteString(w, "# nothing\n")
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	s := &syncer{m: New(Options{Repos: e.svc, Meta: e.db, Blobs: e.blobs}), prog: &Progress{}}
	got, err := s.resolveMirrors(context.Background(), srv.URL+"/list", false)
	if err != nil || strings.Join(got, " ") != "http://a.example/os/ https://c.example/os/" {
		t.Errorf("mirrorlist: %v %v", got, err)
	}
	if _, err := s.resolveMirrors(context.Background(), srv.URL+"/empty", false); err == nil || !strings.Contains(err.Error(), "lists no") {
		t.Errorf("empty mirrorlist: %v", err)
	}
	if _, err := s.resolveMirrors(context.Background(), srv.URL+"/list", true); err == nil {
		t.Errorf("a mirrorlist read as a metalink: no error")
	}
}

// TestInterruptedSyncClosed: a sync record a stopped process left
// "running" is marked failed when an exclusive Mirror starts running,
// and left alone by one on a shared store (another node may run it).
func TestInterruptedSyncClosed(t *testing.T) {
	e := newEnv(t)
	e.mirror(t, "crashed", map[string]any{"upstreams": []string{"http://127.0.0.1:9/"}})
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	left := &meta.MirrorSync{RepoID: r.ID, StartedAt: time.Now().UTC().Add(-time.Hour), Status: meta.SyncRunning}
	if err := e.db.PutSync(ctx, left); err != nil {
		t.Fatal(err)
	}
	status := func() meta.MirrorSync {
		t.Helper()
		l, err := e.db.ListSyncs(ctx, r.ID, 0)
		if err != nil || len(l) != 1 {
			t.Fatalf("syncs: %+v %v", l, err)
		}
		return l[0]
	}
	for _, exclusive := range []bool{false, true} {
		m := New(Options{Repos: e.svc, Meta: e.db, Blobs: e.blobs, Exclusive: exclusive, Tick: time.Hour})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { m.Run(rctx); close(done) }()
		deadline := time.Now().Add(5 * time.Second)
		for exclusive && status().Status == meta.SyncRunning && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !exclusive {
			time.Sleep(100 * time.Millisecond) // Run's first pass
		}
		cancel()
		<-done
		got := status()
		switch {
		case !exclusive && got.Status != meta.SyncRunning:
			t.Errorf("a Mirror on a shared store closed another's running sync: %+v", got)
		case exclusive && (got.Status != meta.SyncFailed || !strings.Contains(got.Error, "interrupted") || got.FinishedAt.IsZero()):
			t.Errorf("interrupted sync after an exclusive start: %+v", got)
		}
	}
}

// lockStore adds a SyncLocker to the SQLite store, as a shared store
// (PostgreSQL) has; held marks locks another node holds.
type lockStore struct {
	*sqlite.Store
	mu    sync.Mutex
	held  map[int64]bool
	taken int
}

func (l *lockStore) TryLockSync(_ context.Context, id int64) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[id] {
		return nil, false, nil
	}
	l.held[id] = true
	l.taken++
	return func() { l.mu.Lock(); delete(l.held, id); l.mu.Unlock() }, true, nil
}

// TestSyncLockShared: on a shared store a mirror another node is syncing
// is refused with ErrBusy and no record; a running record whose lock is
// free is closed as interrupted, one whose lock is held is not; a sync
// holds the lock until its outcome is recorded.
func TestSyncLockShared(t *testing.T) {
	e := newEnv(t)
	e.mirror(t, "shared", map[string]any{"upstreams": []string{"http://127.0.0.1:9/"}})
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	ls := &lockStore{Store: e.db, held: map[int64]bool{r.ID: true}}
	m := New(Options{Repos: e.svc, Meta: ls, Blobs: e.blobs, Backoff: time.Millisecond, Tick: time.Hour})
	if _, _, err := m.Start(ctx, "shared"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("Start while another node syncs: %v, want ErrBusy naming the mirror", err)
	}
	if l, _ := e.db.ListSyncs(ctx, r.ID, 0); len(l) != 0 {
		t.Fatalf("a refused sync left records: %+v", l)
	}
	stale := &meta.MirrorSync{RepoID: r.ID, StartedAt: time.Now().UTC(), Status: meta.SyncRunning}
	if err := e.db.PutSync(ctx, stale); err != nil {
		t.Fatal(err)
	}
	m.endInterrupted(ctx)
	if l, _ := e.db.ListSyncs(ctx, r.ID, 0); len(l) != 1 || l[0].Status != meta.SyncRunning {
		t.Fatalf("a sync another node holds the lock of was closed: %+v", l)
	}
	ls.mu.Lock()
	delete(ls.held, r.ID)
	ls.mu.Unlock()
	m.endInterrupted(ctx)
	if l, _ := e.db.ListSyncs(ctx, r.ID, 0); len(l) != 1 || l[0].Status != meta.SyncFailed || !strings.Contains(l[0].Error, "interrupted") {
		t.Fatalf("a running record with a free lock after endInterrupted: %+v", l)
	}
	rec, err := m.Sync(ctx, "shared")
	if err != nil || rec.Status != meta.SyncFailed {
		t.Fatalf("sync against a closed port: %+v %v", rec, err)
	}
	ls.mu.Lock()
	held, taken := ls.held[r.ID], ls.taken
	ls.mu.Unlock()
	if held || taken != 2 {
		t.Errorf("after the sync: lock held %v, taken %d times (want released, 2)", held, taken)
	}
}

// TestSyncRecordsPruned: a sync leaves at most keepSyncs records.
func TestSyncRecordsPruned(t *testing.T) {
	e := newEnv(t)
	e.mirror(t, "old", map[string]any{"upstreams": []string{"http://127.0.0.1:9/"}})
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	for range keepSyncs + 20 {
		rec := &meta.MirrorSync{RepoID: r.ID, StartedAt: time.Now().UTC(), FinishedAt: time.Now().UTC(), Status: meta.SyncFailed, Error: "503"}
		if err := e.db.PutSync(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	m := New(Options{Repos: e.svc, Meta: e.db, Blobs: e.blobs, Backoff: time.Millisecond})
	rec, err := m.Sync(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.db.ListSyncs(ctx, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != keepSyncs || l[0].ID != rec.ID {
		t.Errorf("%d records after a sync (newest %d), want %d with the sync's (%d) first", len(l), l[0].ID, keepSyncs, rec.ID)
	}
}
