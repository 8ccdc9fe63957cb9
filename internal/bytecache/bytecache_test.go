package bytecache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCache: the cache holds only bytes that match their digest,
// refuses entries over its per-entry bound, and evicts the least recently
// used entries to stay within its size.
func TestCache(t *testing.T) {
	if New(0, 0) != nil || New(-1, 0) != nil {
		t.Fatal("a cache of size ≤ 0 is not nil")
	}
	var none *Cache
	if none.Fits(1) {
		t.Fatal("a nil cache takes entries")
	}
	c := New(800, 0) // entries ≤ 100 bytes
	if c.Fits(101) || !c.Fits(100) || c.Fits(-1) {
		t.Fatalf("fits: per-entry bound is %d, want 100", c.maxEntry)
	}
	blobs := make([][]byte, 10)
	for i := range blobs {
		blobs[i] = fmt.Appendf(nil, "%0100d", i) // 100 bytes each
	}
	wrong := []byte("not the bytes of this digest")
	if c.Put(digestOf(blobs[0]), wrong) {
		t.Fatal("put accepted bytes that do not match the digest")
	}
	if c.Put(digestOf(make([]byte, 101)), make([]byte, 101)) {
		t.Fatal("put accepted an entry over the per-entry bound")
	}
	if _, ok := c.Get(digestOf(blobs[0])); ok {
		t.Fatal("a refused entry is cached")
	}
	for i := range 8 {
		if !c.Put(digestOf(blobs[i]), blobs[i]) {
			t.Fatalf("put %d refused", i)
		}
	}
	if b, n := c.Size(); b != 800 || n != 8 {
		t.Fatalf("size %d bytes, %d entries; want 800, 8", b, n)
	}
	// Touch 0 so that 1 is the least recently used, then add two more.
	if got, ok := c.Get(digestOf(blobs[0])); !ok || string(got) != string(blobs[0]) {
		t.Fatalf("get 0: %q %v", got, ok)
	}
	c.Put(digestOf(blobs[8]), blobs[8])
	c.Put(digestOf(blobs[9]), blobs[9])
	if b, n := c.Size(); b > 800 || n != 8 {
		t.Fatalf("size %d bytes, %d entries after eviction; want ≤ 800, 8", b, n)
	}
	for i, want := range map[int]bool{0: true, 1: false, 2: false, 3: true, 8: true, 9: true} {
		if _, ok := c.Get(digestOf(blobs[i])); ok != want {
			t.Errorf("entry %d cached = %v, want %v", i, ok, want)
		}
	}
	if c.Hits.Load() == 0 || c.Misses.Load() == 0 {
		t.Errorf("hits %d, misses %d: both should have counted", c.Hits.Load(), c.Misses.Load())
	}
}

// TestCacheEntryBound: an explicit entry bound is kept.
func TestCacheEntryBound(t *testing.T) {
	c := New(1<<20, 64<<10)
	if !c.Fits(64<<10) || c.Fits(64<<10+1) {
		t.Fatal("entry bound of 64 KiB not kept")
	}
}

// TestHitCountsNoMiss: Hit counts what it finds as Get does, but not what
// it misses (its caller asks Get then, which counts the miss once).
func TestHitCountsNoMiss(t *testing.T) {
	c := New(800, 0)
	b := []byte("pointer")
	if _, ok := c.Hit(digestOf(b)); ok || c.Misses.Load() != 0 {
		t.Fatalf("Hit of a missing entry: found %v, misses %d", ok, c.Misses.Load())
	}
	c.Put(digestOf(b), b)
	if got, ok := c.Hit(digestOf(b)); !ok || string(got) != "pointer" || c.Hits.Load() != 1 {
		t.Fatalf("Hit: %q %v, hits %d", got, ok, c.Hits.Load())
	}
}
