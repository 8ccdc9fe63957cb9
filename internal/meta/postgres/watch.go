package postgres

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Listener timing.
const (
	// listenIdle is how long the listener waits for a notification before
	// it pings its connection, to notice a connection that died silently.
	listenIdle = 30 * time.Second
	// Reconnection attempts back off from minBackoff to maxBackoff.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// watcher fans the notifications of event-appending transactions out to the
// channels WatchEvents returned. A listener goroutine, with a connection of
// its own outside the pool, runs while there is at least one channel.
type watcher struct {
	s *Store

	mu     sync.Mutex
	subs   map[chan struct{}]func() bool // channel → stop of its context.AfterFunc
	stop   context.CancelFunc            // stops the running listener, nil if none
	closed bool
	wg     sync.WaitGroup // listeners, including ones still stopping
}

func (w *watcher) init(s *Store) {
	w.s = s
	w.subs = map[chan struct{}]func() bool{}
}

// WatchEvents returns a channel that receives a value soon after any
// process commits an event to the database, and after the store has
// (re)connected its listener, since events may have been missed in between.
// Signals are coalesced. The channel is closed when ctx ends or the store
// is closed.
func (s *Store) WatchEvents(ctx context.Context) <-chan struct{} {
	w := &s.watch
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || ctx.Err() != nil {
		close(ch)
		return ch
	}
	w.subs[ch] = context.AfterFunc(ctx, func() { w.unsubscribe(ch) })
	if w.stop == nil {
		lctx, stop := context.WithCancel(context.Background())
		w.stop = stop
		w.wg.Go(func() { w.listen(lctx) })
	}
	return ch
}

// unsubscribe closes ch and stops the listener if no channel is left.
func (w *watcher) unsubscribe(ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.subs[ch]; !ok {
		return
	}
	delete(w.subs, ch)
	close(ch)
	if len(w.subs) == 0 && w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// broadcast signals every channel, without blocking: a channel that holds
// a signal already is left as it is.
func (w *watcher) broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// close closes every channel and waits for the listeners to end.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	for ch, stop := range w.subs {
		stop()
		close(ch)
	}
	clear(w.subs)
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// listen keeps a connection listening on notifyChannel until ctx ends,
// reconnecting with backoff when the connection fails.
func (w *watcher) listen(ctx context.Context) {
	backoff := minBackoff
	for {
		if w.listenOnce(ctx) {
			backoff = minBackoff
		}
		if ctx.Err() != nil {
			return
		}
		// Up to a quarter less, so that many processes that lost the
		// server together do not all come back at the same instant.
		wait := backoff - time.Duration(rand.Int64N(int64(backoff/4)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens and signals until the connection fails or ctx
// ends. It reports whether it got as far as listening.
func (w *watcher) listenOnce(ctx context.Context) (listened bool) {
	conn, err := pgx.ConnectConfig(ctx, w.s.pool.Config().ConnConfig)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		_ = conn.Close(cctx) // the connection is done with, whatever state it is in
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return false
	}
	// Events committed while nobody listened are only in the table.
	w.broadcast()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			w.broadcast()
			continue
		case ctx.Err() != nil:
			return true
		case !pgconn.Timeout(err):
			return true
		}
		// Nothing for a while: make sure the connection still works. A
		// timeout leaves it usable.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return true
		}
	}
}
