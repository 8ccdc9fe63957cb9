package mirror

import (
	"context"
	"sync"
	"time"
)

// batcher gathers the workers about to record packages so that one flush
// of the blob store makes all their blobs durable, and their rows then go
// into the database together (its group commit folds concurrent inserts
// into one transaction): per package, a flush and a commit each would
// cost more than the download.
type batcher struct {
	flush func(context.Context) error
	// size is how many waiting workers start a flush; wait is the longest
	// a worker waits for others.
	size int
	wait time.Duration

	mu  sync.Mutex
	cur *batch
}

type batch struct {
	n    int
	done chan struct{}
	err  error
}

// durable returns once a flush that started after the call has ended.
func (b *batcher) durable(ctx context.Context) error {
	b.mu.Lock()
	cur := b.cur
	if cur == nil {
		cur = &batch{done: make(chan struct{})}
		b.cur = cur
		time.AfterFunc(b.wait, func() { b.run(ctx, cur) })
	}
	cur.n++
	full := cur.n >= b.size
	b.mu.Unlock()
	if full {
		b.run(ctx, cur)
	}
	select {
	case <-cur.done:
		return cur.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run flushes a batch, once: whichever of the timer and the worker that
// filled it comes first.
func (b *batcher) run(ctx context.Context, cur *batch) {
	b.mu.Lock()
	if b.cur != cur {
		b.mu.Unlock()
		return
	}
	b.cur = nil
	b.mu.Unlock()
	cur.err = b.flush(context.WithoutCancel(ctx))
	close(cur.done)
}
