package proxy

import (
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/b.rpm")
		if errors.Is(err, meta.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b was not evicted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range []string{"a", "c"} {
		if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/"+n+".rpm"); err != nil {
			t.Errorf("%s was evicted too: %v", n, err)
		}
	}
	if _, err := e.blobs.Stat(t.Context(), blob.Digest(hexSum(files["b"]))); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("evicted b's blob is still stored: %v", err)
	}
	get("b") // fetched again
	if n := u.count("Packages/b.rpm"); n != 2 {
		t.Errorf("upstream requests for b = %d, want 2", n)
	}
}
