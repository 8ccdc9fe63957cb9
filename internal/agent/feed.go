package agent

import (
	"context"
	"errors"
	"time"
)

// follow reads the change feed from since and hands events to the worker,
// reconnecting with backoff; it polls instead when the stream is buffered
// by a proxy (or feed = "poll").
func (a *Agent) follow(ctx context.Context, since int64) {
	pos := since
	mode := a.cfg.Feed
	if mode == "auto" {
		mode = "stream"
	}
	var pollSince time.Time
	strikes := 0
	b := newBackoff()
	var lastLogged string
	logErr := func(err error) {
		a.setFeedErr("change feed unavailable: " + err.Error())
		msg := err.Error()
		if msg == lastLogged {
			return
		}
		lastLogged = msg
		if authError(err) {
			a.log.Error("the origin refuses the edge token", "err", err)
			return
		}
		a.log.Warn("change feed unavailable; serving the last complete generation and retrying", "err", err)
	}
	send := func(ev event) bool {
		select {
		case a.events <- ev:
			pos = max(pos, ev.Seq)
			return true
		case <-ctx.Done():
			return false
		}
	}
	pollOnce := func() (int, error) {
		evs, err := a.origin.poll(ctx, pos)
		if err != nil {
			return 0, err
		}
		for _, ev := range evs {
			if ev.Seq > pos && !send(ev) {
				return 0, ctx.Err()
			}
		}
		return len(evs), nil
	}
	for ctx.Err() == nil {
		a.setFeedMode(mode)
		if mode == "poll" {
			n, err := pollOnce()
			switch {
			case err != nil:
				logErr(err)
				b.wait(ctx)
			default:
				lastLogged = ""
				a.setFeedErr("")
				b.reset()
				if n == 0 {
					sleep(ctx, seconds(a.cfg.PollInterval))
				}
			}
			if a.cfg.Feed == "auto" && time.Since(pollSince) > 10*time.Minute {
				mode = "stream" // the proxy may have been fixed
			}
			continue
		}
		a.metrics.feedConnected.Set(1)
		got, err := a.origin.streamEvents(ctx, pos, seconds(a.cfg.FeedIdleTimeout), func() {
			a.setFeedErr("")
			lastLogged = ""
		}, func(ev event) {
			if ev.Seq > pos {
				send(ev)
			}
		})
		a.metrics.feedConnected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if got {
			b.reset()
			strikes = 0
			lastLogged = ""
		}
		if errors.Is(err, errStreamIdle) {
			// Catch up by polling, in case a proxy holds the stream back.
			if _, perr := pollOnce(); perr != nil {
				logErr(perr)
			}
			if !got {
				strikes++
			}
			if strikes >= 2 && a.cfg.Feed == "auto" {
				a.log.Warn("the event stream stays silent (a proxy buffering it?): polling instead", "interval", seconds(a.cfg.PollInterval))
				mode, pollSince, strikes = "poll", time.Now(), 0
			}
			continue
		}
		logErr(err)
		b.wait(ctx)
	}
}

func (a *Agent) setFeedErr(msg string) {
	a.mu.Lock()
	a.feedErr = msg
	a.mu.Unlock()
}

func (a *Agent) setFeedMode(m string) {
	a.mu.Lock()
	a.feedMode = m
	a.mu.Unlock()
}

func (a *Agent) kickHeartbeat() {
	select {
	case a.hbKick <- struct{}{}:
	default:
	}
}

// heartbeatLoop reports the agent's position to the origin on a schedule
// and after every sync.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(seconds(a.cfg.HeartbeatInterval))
	defer t.Stop()
	var lastLogged string
	for {
		hb := a.heartbeatBody()
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.origin.heartbeat(hctx, a.cfg.Name, hb)
		cancel()
		switch {
		case err == nil:
			if lastLogged != "" {
				a.log.Info("heartbeat accepted by the origin again")
			}
			lastLogged = ""
		case ctx.Err() != nil:
		case err.Error() != lastLogged:
			lastLogged = err.Error()
			if authError(err) {
				a.log.Error("the origin refuses the edge's heartbeat", "err", err)
			} else {
				a.log.Warn("heartbeat failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.hbKick:
		}
	}
}

func (a *Agent) heartbeatBody() heartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	hb := heartbeat{Version: a.version, Repos: map[string]int64{}, LastError: a.lastErr}
	if hb.LastError == "" {
		hb.LastError = a.feedErr
	}
	for k, v := range a.served {
		hb.Repos[k] = v
	}
	for _, r := range a.cfg.Repos {
		if _, ok := hb.Repos[r]; !ok {
			hb.Repos[r] = 0
		}
	}
	if !a.lastSync.IsZero() {
		ls := a.lastSync.UTC()
		hb.LastSync = &ls
	}
	return hb
}

// backoff is an exponential retry delay from 250 ms up to 10 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) next() time.Duration {
	if b.d == 0 {
		b.d = 250 * time.Millisecond
	} else {
		b.d = min(2*b.d, 10*time.Second)
	}
	return b.d
}

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait(ctx context.Context) { sleep(ctx, b.next()) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
