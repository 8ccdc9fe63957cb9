package repo

import (
	"context"
	"encoding/json"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// followPoll is how often a process on a shared metadata store reads the
// event log even without a signal, in case a notification was lost.
const followPoll = 5 * time.Second

// follow keeps this process in step with what other processes commit to a
// shared metadata store (several origin nodes on one PostgreSQL): a
// generation another node published replaces this node's view of the
// repository; a package another node recorded kicks this node's publisher
// too, so that an upload acknowledged before it was visible (?wait=false)
// is published even if its node dies; a deleted repository stops its
// publisher. Events of this process are read as well; applying them again
// is harmless.
//
// It runs only when the store is a meta.EventWatcher. A SQLite store has
// one process (the data directory is locked), which sees its own changes.
func (s *Service) follow(ctx context.Context, w meta.EventWatcher, since int64) {
	defer s.wg.Done()
	sig := w.WatchEvents(ctx)
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-sig:
			if !ok {
				return
			}
		case <-t.C:
		}
		for {
			evs, err := s.meta.Events(ctx, since, 1000)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("reading the event log failed; retrying", "err", err)
				}
				break
			}
			for i := range evs {
				s.applyRemote(ctx, &evs[i])
				since = evs[i].Seq
			}
			if len(evs) > 0 {
				s.feed.bump()
			}
			if len(evs) < 1000 {
				break
			}
		}
	}
}

// applyRemote brings this process up to date with one event.
func (s *Service) applyRemote(ctx context.Context, ev *meta.Event) {
	switch ev.Type {
	case meta.EventGenerationPublic:
		var d meta.GenerationEventData
		if json.Unmarshal(ev.Data, &d) != nil {
			return
		}
		s.views.mu.RLock()
		v := s.views.m[ev.Repo]
		s.views.mu.RUnlock()
		if v != nil && (len(v.gens) == 0 || v.gens[0].number < d.Number) {
			// Rebuilt from the store on the next lookup.
			s.views.drop(ev.Repo)
		}
	case meta.EventRepoUpdated:
		s.views.drop(ev.Repo)
	case meta.EventRepoDeleted:
		s.mu.Lock()
		if p, ok := s.publishers[ev.Repo]; ok {
			var d meta.RepoEventData
			if json.Unmarshal(ev.Data, &d) == nil && d.ID == p.repoID {
				p.stop()
				delete(s.publishers, ev.Repo)
			}
		}
		s.mu.Unlock()
		s.views.drop(ev.Repo)
	case meta.EventPackageAdded, meta.EventPackageRemoved:
		r, err := s.meta.GetRepo(ctx, ev.Repo)
		if err != nil {
			return
		}
		if _, ok := s.formats[r.Format]; ok {
			s.publisher(r).kick()
		}
	}
}
