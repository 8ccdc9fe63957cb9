// Package bytecache keeps the bytes of small blobs in memory, bounded and
// least recently used first out. Blobs are content-addressed, so an entry
// never goes stale: Put checks the bytes against the digest, and a blob
// that is deleted is simply never asked for again and ages out. The HTTP
// layer uses it for files read from a remote blob store, the proxy for
// the pointer files a fleet asks for again and again.
package bytecache

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// Cache is a bounded LRU of blob bytes by hex SHA-256 digest. A nil
// *Cache holds nothing.
type Cache struct {
	maxBytes, maxEntry int64

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used first
	items map[string]*list.Element
	bytes int64

	// Hits and Misses count lookups of entries that fit.
	Hits, Misses atomic.Int64
}

type entry struct {
	digest string
	data   []byte
}

// EntryMax bounds one entry whatever the cache's size: larger files are
// streamed from the store.
const EntryMax = 16 << 20

// New returns a cache of at most maxBytes, or nil for maxBytes ≤ 0. One
// entry is at most maxEntry bytes, or, for maxEntry ≤ 0, an eighth of the
// cache; never more than EntryMax.
func New(maxBytes, maxEntry int64) *Cache {
	if maxBytes <= 0 {
		return nil
	}
	if maxEntry <= 0 {
		maxEntry = maxBytes / 8
	}
	return &Cache{
		maxBytes: maxBytes,
		maxEntry: min(maxEntry, maxBytes, EntryMax),
		lru:      list.New(),
		items:    map[string]*list.Element{},
	}
}

// Fits reports whether a file of size bytes may be cached.
func (c *Cache) Fits(size int64) bool {
	return c != nil && size >= 0 && size <= c.maxEntry
}

// Get returns the cached bytes of digest.
func (c *Cache) Get(digest string) ([]byte, bool) { return c.get(digest, true) }

// Hit is Get for a caller that calls Get when it misses (a fast path
// before the full one): it counts a hit, not a miss.
func (c *Cache) Hit(digest string) ([]byte, bool) { return c.get(digest, false) }

func (c *Cache) get(digest string, countMiss bool) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[digest]
	if !ok {
		if countMiss {
			c.Misses.Add(1)
		}
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.Hits.Add(1)
	return el.Value.(*entry).data, true
}

// Put caches data as the bytes of digest if they are exactly those bytes:
// a store that returned something else must not have it served from
// memory until the process restarts. It evicts the least recently used
// entries to stay within the bound.
func (c *Cache) Put(digest string, data []byte) bool {
	if !c.Fits(int64(len(data))) {
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
	c.items[digest] = c.lru.PushFront(&entry{digest: digest, data: data})
	c.bytes += int64(len(data))
	for c.bytes > c.maxBytes {
		el := c.lru.Back()
		e := el.Value.(*entry)
		c.lru.Remove(el)
		delete(c.items, e.digest)
		c.bytes -= int64(len(e.data))
	}
	return true
}

// Size returns the bytes and entries held.
func (c *Cache) Size() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}
