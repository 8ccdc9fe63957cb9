package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/repo"
)

// prepared is a package waiting for the recorder.
type prepared struct {
	p      *repo.Prepared
	j      job
	reused bool
}

// maxRecordBatch bounds the packages one flush covers.
const maxRecordBatch = 256

// recorder adds the rows of prepared packages in batches: one flush of
// the blob store makes a batch's blobs durable, then its rows go in
// together (the database folds concurrent inserts into one transaction),
// while the workers download the next packages.
func (s *syncer) recorder(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var batch []prepared
	var tick <-chan time.Time
	record := func() {
		if len(batch) == 0 {
			return
		}
		if err := s.flush(ctx); err != nil {
			for _, b := range batch {
				s.failed(fmt.Errorf("%s: %w", b.j.rel, err))
			}
			batch = batch[:0]
			return
		}
		var wg sync.WaitGroup
		// As many at once as one SQLite transaction folds (its group
		// commit takes up to 128): fewer, larger commits.
		sem := make(chan struct{}, 128)
		for _, b := range batch {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				res, err := s.m.opts.Repos.RecordPrepared(ctx, b.p)
				var conflict *repo.ConflictError
				switch {
				case errors.As(err, &conflict):
					s.conflict(b.j, conflict)
				case err != nil:
					s.failed(fmt.Errorf("%s: %w", b.j.rel, err))
				default:
					s.count(func(st *Stats) {
						if res.Created {
							st.Added++
							if b.reused {
								st.Reused++
							}
						} else {
							st.Present++
						}
					})
				}
			}()
		}
		wg.Wait()
		batch = batch[:0]
		if !s.exact {
			// Compress what the publish at the end will need while the
			// downloads go on (repo/prewarm.go).
			s.m.opts.Repos.WarmMirror(s.repo)
		}
	}
	for {
		select {
		case b, ok := <-s.ready:
			if !ok {
				record()
				return
			}
			if len(batch) == 0 {
				tick = time.After(50 * time.Millisecond)
			}
			batch = append(batch, b)
			if len(batch) >= maxRecordBatch {
				record()
				tick = nil
			}
		case <-tick:
			record()
			tick = nil
		}
	}
}
