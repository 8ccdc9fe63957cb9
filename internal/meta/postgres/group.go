package postgres

import (
	"context"
	"slices"
	"sync"

	"github.com/packyard/packyard/internal/meta"
)

// maxBatch bounds the packages one transaction inserts.
const maxBatch = 128

// addRequest is one AddPackage call waiting for its batch.
type addRequest struct {
	ctx context.Context
	p   *meta.Package

	// Results, set by the batch.
	existing *meta.Package
	id, seq  int64
	err      error

	done chan struct{} // closed once the results are set
	lead chan struct{} // closed when the request is to lead the next batch
}

// groupCommit folds concurrent AddPackage calls into shared transactions.
// Every commit waits for the write lock and for the server's fsync, so one
// transaction of many packages costs little more than one of a single
// package; and a process's uploads then hold one pooled connection between
// them, not one each.
//
// The first caller leads: it takes the requests queued so far (at most
// maxBatch, its own first), runs them in one transaction, and passes the
// lead to the oldest request still queued.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*addRequest
	leading bool // some request leads; it hands over or clears this
}

// add queues p and returns its request once a batch has run it with run.
func (g *groupCommit) add(ctx context.Context, p *meta.Package, run func([]*addRequest)) *addRequest {
	r := &addRequest{ctx: ctx, p: p, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	follow := g.leading
	g.leading = true
	g.mu.Unlock()
	if follow {
		select {
		case <-r.done:
			return r
		case <-r.lead:
		}
	}

	// r is now the oldest queued request: the batch starts with it.
	g.mu.Lock()
	n := min(len(g.queue), maxBatch)
	batch := slices.Clone(g.queue[:n])
	g.queue = g.queue[n:]
	g.mu.Unlock()

	run(batch)
	for _, b := range batch {
		close(b.done)
	}

	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return r
}
