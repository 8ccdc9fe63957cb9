package fsblob

import (
	"context"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/packyard/packyard/internal/blob"
)

var (
	_ blob.Syncer        = (*Store)(nil)
	_ blob.LazyCommitter = (*writer)(nil)
)

// lazySet tracks the blobs committed without a flush, and shares one
// syncfs(2) among every concurrent Sync call.
type lazySet struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending map[blob.Digest]struct{}
	// started and finished number the flushes; a caller needs one that
	// started after it called.
	started, finished uint64
	running           bool
	err               error
}

func (s *Store) isLazy(d blob.Digest) bool {
	s.lazy.mu.Lock()
	defer s.lazy.mu.Unlock()
	_, ok := s.lazy.pending[d]
	return ok
}

func (s *Store) markLazy(d blob.Digest) {
	s.lazy.mu.Lock()
	defer s.lazy.mu.Unlock()
	if s.lazy.pending == nil {
		s.lazy.pending = map[blob.Digest]struct{}{}
	}
	s.lazy.pending[d] = struct{}{}
}

// Sync makes every blob committed lazily before the call durable with one
// syncfs(2) of the store's filesystem (file data and directory entries);
// callers that arrive while a flush runs share the next one.
func (s *Store) Sync(ctx context.Context) error {
	l := &s.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	want := l.started + 1
	for l.finished < want {
		if l.running {
			l.cond.Wait()
			continue
		}
		l.running = true
		l.started++
		id := l.started
		flushed := l.pending
		l.pending = nil
		// Shard directories made before the flush are durable after it.
		var dirs []any
		s.lazyDirs.Range(func(k, _ any) bool { dirs = append(dirs, k); return true })
		l.mu.Unlock()
		err := syncfs(s.blobs)
		if err == nil {
			for _, d := range dirs {
				s.durable.Store(d, struct{}{})
				s.lazyDirs.Delete(d)
			}
		}
		l.mu.Lock()
		l.running, l.finished, l.err = false, id, err
		if err != nil {
			// Still not durable: the next flush tries them again.
			for d := range flushed {
				if l.pending == nil {
					l.pending = map[blob.Digest]struct{}{}
				}
				l.pending[d] = struct{}{}
			}
		} else {
			for d := range flushed {
				s.markSynced(d)
			}
		}
		l.cond.Broadcast()
	}
	if l.err != nil {
		return fmt.Errorf("fsblob: flush lazily committed blobs: %w", l.err)
	}
	return nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// syncFile flushes one stored file (a blob committed lazily that a
// durable commit of the same bytes now relies on).
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
