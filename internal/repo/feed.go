package repo

import (
	"context"
	"sync"
	"time"
)

// feedSignal wakes change-feed followers when this process commits an
// event. Followers re-read the store, so a missed signal costs at most one
// poll interval, never an event.
type feedSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (f *feedSignal) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

func (f *feedSignal) bump() {
	f.mu.Lock()
	if f.ch != nil {
		close(f.ch)
		f.ch = nil
	}
	f.mu.Unlock()
}

// WaitEvents blocks until an event after seq may exist, ctx ends, or the
// poll interval passes (events committed by other processes).
func (s *Service) WaitEvents(ctx context.Context, seq int64, poll time.Duration) {
	ch := s.feed.wait()
	if last, err := s.meta.LastSeq(ctx); err == nil && last > seq {
		return
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}
