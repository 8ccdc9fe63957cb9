package httpapi

import (
	"fmt"
	"testing"
)

// TestGenCache: the file-list cache keeps the lists of a publish burst
// over many repositories (each asked for again by every edge), drops the
// least recently used first, and is bounded by the files it holds.
func TestGenCache(t *testing.T) {
	c := &genCache{}
	builds := map[string]int{}
	get := func(key string, n int) {
		t.Helper()
		l, err := c.get(key, func() ([]genFileJSON, error) {
			builds[key]++
			return make([]genFileJSON, n), nil
		})
		if err != nil || len(l) != n {
			t.Fatalf("get %s: %d files, %v", key, len(l), err)
		}
	}
	// Twenty repositories publish; every edge asks for the new list and
	// the one it serves, again and again.
	for range 3 {
		for i := range 20 {
			get(fmt.Sprintf("%d/2", i), 10)
			get(fmt.Sprintf("%d/1", i), 10)
		}
	}
	for k, n := range builds {
		if n != 1 {
			t.Errorf("list %s built %d times, want once", k, n)
		}
	}
	// The most recently used survive a flood of others.
	for i := range genCacheLists + 10 {
		get("0/2", 10)
		get(fmt.Sprintf("flood/%d", i), 10)
	}
	if builds["0/2"] != 1 {
		t.Errorf("a list in use was built %d times, want once", builds["0/2"])
	}
	if len(c.lists) > genCacheLists || len(c.keys) != len(c.lists) {
		t.Errorf("cache holds %d lists (%d keys), at most %d", len(c.lists), len(c.keys), genCacheLists)
	}
	// Bounded by files: two lists of more than half the budget do not
	// both stay, and one over the budget is not kept.
	get("big/1", genCacheFiles/2+1)
	get("big/2", genCacheFiles/2+1)
	get("huge/1", genCacheFiles+1)
	total := 0
	for _, l := range c.lists {
		total += len(l)
	}
	if total > genCacheFiles || total != c.files {
		t.Errorf("cache holds %d files (counted %d), at most %d", total, c.files, genCacheFiles)
	}
	if _, ok := c.lists["huge/1"]; ok {
		t.Error("a list larger than the cache was kept")
	}
	if _, ok := c.lists["big/2"]; !ok {
		t.Error("the most recent list that fits was not kept")
	}
}
