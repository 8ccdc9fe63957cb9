package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// memoStore keeps the records the read path looked up for a moment, so
// that a warm cache answers the requests of a whole fleet (the same
// InRelease or repomd.xml, again and again) without a database query
// each. Every write through it forgets the repository's entries at once;
// a write by another node sharing the database is seen after at most ttl,
// the same order as the time between two of its own revalidations being
// noticed.
type memoStore struct {
	Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[memoKey]memoEntry
	// changes counts writes: a record read from the store is kept only
	// if no write happened while it was read.
	changes uint64
}

type memoKey struct {
	repo int64
	path string
}

type memoEntry struct {
	rec   meta.ProxyFile
	until time.Time
}

// memoMax bounds the entries; past it the memo starts again empty.
const memoMax = 16384

func newMemoStore(s Store, ttl time.Duration, now func() time.Time) *memoStore {
	return &memoStore{Store: s, ttl: ttl, now: now, entries: map[memoKey]memoEntry{}}
}

func (m *memoStore) GetProxyFile(ctx context.Context, repoID int64, path string) (*meta.ProxyFile, error) {
	k := memoKey{repoID, path}
	now := m.now()
	m.mu.Lock()
	e, ok := m.entries[k]
	before := m.changes
	m.mu.Unlock()
	if ok && now.Before(e.until) {
		rec := e.rec
		return &rec, nil
	}
	rec, err := m.Store.GetProxyFile(ctx, repoID, path)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.changes == before {
		if len(m.entries) >= memoMax {
			clear(m.entries)
		}
		m.entries[k] = memoEntry{rec: *rec, until: now.Add(m.ttl)}
	}
	m.mu.Unlock()
	return rec, nil
}

// forget drops a repository's entries.
func (m *memoStore) forget(repoID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changes++
	for k := range m.entries {
		if k.repo == repoID {
			delete(m.entries, k)
		}
	}
}

func (m *memoStore) PutProxyFiles(ctx context.Context, repoID int64, files []meta.ProxyFile) error {
	defer m.forget(repoID)
	return m.Store.PutProxyFiles(ctx, repoID, files)
}

func (m *memoStore) TouchProxyFile(ctx context.Context, repoID int64, path string, fetched, used time.Time) error {
	defer m.forget(repoID)
	return m.Store.TouchProxyFile(ctx, repoID, path, fetched, used)
}

func (m *memoStore) DeleteProxyFile(ctx context.Context, repoID int64, path string) error {
	defer m.forget(repoID)
	return m.Store.DeleteProxyFile(ctx, repoID, path)
}
