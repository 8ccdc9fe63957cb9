package httpapi

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// readCache keeps the bytes of recently served small files of a blob store
// that is not on local disk (S3), so that the index files every client
// fetches are answered from memory instead of one store request each.
// Blobs are content-addressed and never change under their digest, so an
// entry never goes stale; a blob deleted from the store (gc) is no longer
// named by any served generation, so its entry is simply never asked for
// again and ages out.
type readCache struct {
	maxBytes, maxEntry int64

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recently used first
	items map[string]*list.Element
	bytes int64

	hits, misses atomic.Int64
}

type cacheEntry struct {
	digest string
	data   []byte
}

// readCacheEntryMax bounds one cached file: larger ones (packages, big
// files databases) are streamed from the store.
const readCacheEntryMax = 16 << 20

// newReadCache returns a cache of at most maxBytes, or nil for maxBytes ≤ 0.
// One entry is at most an eighth of the cache and at most
// readCacheEntryMax.
func newReadCache(maxBytes int64) *readCache {
	if maxBytes <= 0 {
		return nil
	}
	return &readCache{
		maxBytes: maxBytes,
		maxEntry: min(maxBytes/8, readCacheEntryMax),
		lru:      list.New(),
		items:    map[string]*list.Element{},
	}
}

// fits reports whether a file of size bytes may be cached.
func (c *readCache) fits(size int64) bool {
	return c != nil && size >= 0 && size <= c.maxEntry
}

// get returns the cached bytes of digest.
func (c *readCache) get(digest string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[digest]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.hits.Add(1)
	return el.Value.(*cacheEntry).data, true
}

// put caches data as the bytes of digest if they are exactly those bytes:
// a store that returned something else must not have it served from
// memory until the process restarts. It evicts the least recently used
// entries to stay within the bound.
func (c *readCache) put(digest string, data []byte) bool {
	if !c.fits(int64(len(data))) {
		return false
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != digest {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[digest]; ok {
		return true
	}
	c.items[digest] = c.lru.PushFront(&cacheEntry{digest: digest, data: data})
	c.bytes += int64(len(data))
	for c.bytes > c.maxBytes {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.items, e.digest)
		c.bytes -= int64(len(e.data))
	}
	return true
}

// size returns the bytes and entries held.
func (c *readCache) size() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}

// register adds the cache's collectors to m.
func (c *readCache) register(m *Metrics) {
	if c == nil || m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "packyard_read_cache_hits_total", Help: "Files served from the in-memory read cache of a remote blob store.",
		}, func() float64 { return float64(c.hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "packyard_read_cache_misses_total", Help: "Cacheable files read from a remote blob store because the read cache did not hold them.",
		}, func() float64 { return float64(c.misses.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "packyard_read_cache_bytes", Help: "Bytes held by the in-memory read cache of a remote blob store.",
		}, func() float64 { b, _ := c.size(); return float64(b) }),
	)
}
