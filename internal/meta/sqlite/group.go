package sqlite

import (
	"context"
	"sync"

	"github.com/packyard/packyard/internal/meta"
)

// maxBatch bounds the packages one transaction inserts.
const maxBatch = 128

// addRequest is one AddPackage call waiting for its batch.
type addRequest struct {
	ctx context.Context
	p   *meta.Package

	existing *meta.Package
	id, seq  int64
	err      error

	done    chan struct{} // closed when the request's batch committed
	promote chan struct{} // closed when the request must lead the next batch
}

// groupCommit folds concurrent writes into shared transactions: SQLite
// commits one transaction at a time, and each commit costs an fsync, so 8
// uploads at once would otherwise wait for 8 fsyncs in a row. The first
// caller leads: it takes every request queued so far, commits them in one
// transaction, and hands the lead to the oldest request that arrived
// meanwhile.
type groupCommit struct {
	mu      sync.Mutex
	pending []*addRequest
	leading bool
}

func (g *groupCommit) add(ctx context.Context, p *meta.Package, commit func([]*addRequest)) *addRequest {
	r := &addRequest{ctx: ctx, p: p, done: make(chan struct{}), promote: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		select {
		case <-r.done:
			return r
		case <-r.promote:
		}
	}
	// Lead one batch, which includes r.
	g.mu.Lock()
	n := min(len(g.pending), maxBatch)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	commit(batch)
	for _, b := range batch {
		close(b.done)
	}
	g.mu.Lock()
	if len(g.pending) > 0 {
		close(g.pending[0].promote)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return r
}
