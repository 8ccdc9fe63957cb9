package fsblob

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// TestLazyCommit: a lazily committed blob is visible at once; Sync
// flushes it (shared among concurrent callers); a durable commit of the
// same bytes flushes it too.
func TestLazyCommit(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var lazy []blob.Digest
	for i := range 20 {
		w, err := s.Create(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "blob %d", i)
		info, err := w.(blob.LazyCommitter).CommitLazy(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, info.Digest); err != nil {
			t.Fatalf("lazily committed blob not visible: %v", err)
		}
		lazy = append(lazy, info.Digest)
	}
	if !s.isLazy(lazy[0]) {
		t.Fatal("blob not tracked as lazy")
	}
	// Their shard directories were made without fsyncing the parent:
	// the flush makes them durable.
	shard := s.shardDir(lazy[0])
	if _, ok := s.durable.Load(shard); ok {
		t.Fatal("a lazy commit fsynced its shard directory's parent")
	}
	if _, ok := s.lazyDirs.Load(shard); !ok {
		t.Fatal("shard directory of a lazy commit not tracked")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Sync(ctx) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range lazy {
		if s.isLazy(d) || !s.isSynced(d) {
			t.Fatalf("blob %s not flushed by Sync", d)
		}
	}
	if _, ok := s.durable.Load(shard); !ok {
		t.Fatal("Sync did not make the lazy shard directory durable")
	}
	if _, ok := s.lazyDirs.Load(shard); ok {
		t.Fatal("Sync left the shard directory tracked as lazy")
	}
	if s.lazy.finished > 3 {
		t.Errorf("8 concurrent Sync calls ran %d flushes, want them shared", s.lazy.finished)
	}
	// A lazy commit of bytes stored durably already is a no-op, and a
	// durable commit of lazily committed bytes flushes them.
	w, _ := s.Create(ctx, 0)
	fmt.Fprint(w, "later")
	info, err := w.(blob.LazyCommitter).CommitLazy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := s.Create(ctx, 0)
	fmt.Fprint(w2, "later")
	if _, err := w2.Commit(ctx, info.Digest); err != nil {
		t.Fatal(err)
	}
	if !s.isSynced(info.Digest) {
		t.Errorf("durable commit over a lazy one did not mark it synced")
	}
	if _, ok := s.durable.Load(s.shardDir(info.Digest)); !ok {
		t.Errorf("durable commit over a lazy one left its shard directory's entry unsynced")
	}
	if n, _ := s.TempCount(); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
}
