package proxy

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

func TestSizeCapEvictsLeastRecentlyUsed(t *testing.T) {
	u := newUpstream(t)
	files := map[string][]byte{}
	for _, n := range []string{"a", "b", "c"} {
		files[n] = randomBytes(t, 1<<20)
		u.set("Packages/"+n+".rpm", files[n])
	}
	e := newEnv(t, meta.FormatRPM, u)
	e.cfg.MaxSize = 5 << 19 // 2.5 MiB
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	get := func(n string) {
		t.Helper()
		code, b, _, err := e.get(t, "Packages/"+n+".rpm")
		if err != nil || code != 200 || len(b) != len(files[n]) {
			t.Fatalf("GET %s: %d %v", n, code, err)
		}
	}
	get("a")
	advance(2 * time.Minute)
	get("b")
	advance(2 * time.Minute)
	get("a") // a hit: a is now more recent than b
	advance(2 * time.Minute)
	get("c") // 3 MiB > 2.5 MiB: b goes
	// Eviction forgets the record, then deletes the blob: both are
	// waited for.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/b.rpm")
		_, serr := e.blobs.Stat(t.Context(), blob.Digest(hexSum(files["b"])))
		if errors.Is(err, meta.ErrNotFound) && errors.Is(serr, blob.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b was not evicted: record %v, blob %v", err, serr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range []string{"a", "c"} {
		if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/"+n+".rpm"); err != nil {
			t.Errorf("%s was evicted too: %v", n, err)
		}
	}
	get("b") // fetched again
	if n := u.count("Packages/b.rpm"); n != 2 {
		t.Errorf("upstream requests for b = %d, want 2", n)
	}
}

// gatedBlobs holds the first Read of one blob until gate is closed.
type gatedBlobs struct {
	blob.Store
	digest blob.Digest
	opened chan struct{}
	gate   chan struct{}
	once   sync.Once
}

func (g *gatedBlobs) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	r, err := g.Store.Open(ctx, d)
	if err != nil || d != g.digest {
		return r, err
	}
	return &gatedReader{Reader: r, g: g}, nil
}

type gatedReader struct {
	blob.Reader
	g *gatedBlobs
}

func (r *gatedReader) Read(p []byte) (int, error) {
	r.g.once.Do(func() { close(r.g.opened) })
	<-r.g.gate
	return r.Reader.Read(p)
}

// TestEvictionSparesBlobsBeingRead: the least recently used package is
// not evicted while a response is reading it; the next one goes instead.
func TestEvictionSparesBlobsBeingRead(t *testing.T) {
	u := newUpstream(t)
	files := map[string][]byte{}
	for _, n := range []string{"a", "b", "c"} {
		files[n] = randomBytes(t, 1<<20)
		u.set("Packages/"+n+".rpm", files[n])
	}
	e := newEnv(t, meta.FormatRPM, u)
	g := &gatedBlobs{Store: e.blobs, digest: blob.Digest(hexSum(files["a"])), opened: make(chan struct{}), gate: make(chan struct{})}
	e.p = New(Options{Blobs: g, Meta: e.store, TempDir: t.TempDir()})
	t.Cleanup(e.p.Close)
	e.cfg.MaxSize = 5 << 19 // 2.5 MiB
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	get := func(n string) {
		t.Helper()
		code, b, _, err := e.get(t, "Packages/"+n+".rpm")
		if err != nil || code != 200 || !bytes.Equal(b, files[n]) {
			t.Fatalf("GET %s: %d %v", n, code, err)
		}
	}
	get("a")
	// A slow client reads a from the cache (its last use stays the
	// oldest: touched at most once a minute).
	slow := make(chan error, 1)
	go func() {
		code, b, _, err := e.get(t, "Packages/a.rpm")
		if err == nil && (code != 200 || !bytes.Equal(b, files["a"])) {
			err = errors.New("a served wrong")
		}
		slow <- err
	}()
	<-g.opened
	advance(2 * time.Minute)
	get("b")
	advance(2 * time.Minute)
	get("c") // 3 MiB > 2.5 MiB
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.p.mu.Lock()
		cs := e.p.sizes[e.repo.ID]
		done := cs != nil && !cs.evicting
		e.p.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("eviction did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.blobs.Stat(t.Context(), g.digest); err != nil {
		t.Errorf("the blob being read was evicted: %v", err)
	}
	if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/b.rpm"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("b was not evicted in a's place: %v", err)
	}
	close(g.gate)
	if err := <-slow; err != nil {
		t.Error(err)
	}
}
