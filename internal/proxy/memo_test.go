package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// countingStore is a Store of proxy records in a map that counts lookups;
// hook, if set, runs inside GetProxyFile after the record is read.
type countingStore struct {
	mu   sync.Mutex
	recs map[string]meta.ProxyFile
	gets int
	hook func()
}

func (s *countingStore) PutProxyFiles(_ context.Context, _ int64, files []meta.ProxyFile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range files {
		s.recs[f.Path] = f
	}
	return nil
}

func (s *countingStore) GetProxyFile(_ context.Context, _ int64, path string) (*meta.ProxyFile, error) {
	s.mu.Lock()
	s.gets++
	f, ok := s.recs[path]
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	if !ok {
		return nil, meta.ErrNotFound
	}
	return &f, nil
}

func (s *countingStore) TouchProxyFile(_ context.Context, _ int64, path string, fetched, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.recs[path]
	if !ok {
		return meta.ErrNotFound
	}
	if !fetched.IsZero() {
		f.FetchedAt = fetched
	}
	s.recs[path] = f
	return nil
}

func (s *countingStore) ListProxyFiles(context.Context, int64, func(*meta.ProxyFile) error) error {
	return nil
}

func (s *countingStore) DeleteProxyFile(_ context.Context, _ int64, path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, path)
	return nil
}

func (s *countingStore) DigestReferenced(context.Context, string) (bool, error) { return false, nil }

// TestMemoStore: a record is looked up once per TTL; every write through
// the memo forgets the repository's records at once; a record read while
// a write happened is not kept; not-found is never kept.
func TestMemoStore(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{recs: map[string]meta.ProxyFile{"InRelease": {Path: "InRelease", Digest: "a"}}}
	now := time.Unix(1000, 0)
	m := newMemoStore(cs, time.Second, func() time.Time { return now })
	get := func(want string) {
		t.Helper()
		r, err := m.GetProxyFile(ctx, 1, "InRelease")
		if err != nil || r.Digest != want {
			t.Fatalf("GetProxyFile = %+v, %v; want digest %s", r, err, want)
		}
	}
	get("a")
	get("a")
	if cs.gets != 1 {
		t.Errorf("two lookups within the TTL asked the store %d times, want 1", cs.gets)
	}
	now = now.Add(1500 * time.Millisecond)
	get("a")
	if cs.gets != 2 {
		t.Errorf("a lookup after the TTL did not ask the store (%d asks)", cs.gets)
	}
	if err := m.PutProxyFiles(ctx, 1, []meta.ProxyFile{{Path: "InRelease", Digest: "b"}}); err != nil {
		t.Fatal(err)
	}
	get("b")
	if err := m.DeleteProxyFile(ctx, 1, "InRelease"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetProxyFile(ctx, 1, "InRelease"); err == nil {
		t.Fatal("a deleted record is still served from the memo")
	}
	before := cs.gets
	_, _ = m.GetProxyFile(ctx, 1, "InRelease")
	if cs.gets != before+1 {
		t.Error("not-found was kept")
	}

	// A write while a lookup is reading: the lookup's (older) record must
	// not be kept.
	_ = cs.PutProxyFiles(ctx, 1, []meta.ProxyFile{{Path: "InRelease", Digest: "c"}})
	cs.hook = func() {
		cs.hook = nil
		_ = m.PutProxyFiles(ctx, 1, []meta.ProxyFile{{Path: "InRelease", Digest: "d"}})
	}
	get("c") // read before the write landed
	get("d") // not the memo of "c"
}
