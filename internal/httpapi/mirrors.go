package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/mirror"
)

// syncJSON is one mirror sync record, with the progress of a running one.
type syncJSON struct {
	ID         int64                `json:"id"`
	Repo       string               `json:"repo"`
	Status     string               `json:"status"`
	StartedAt  time.Time            `json:"started_at"`
	FinishedAt *time.Time           `json:"finished_at,omitempty"`
	Error      string               `json:"error,omitempty"`
	Generation int64                `json:"generation,omitempty"`
	Stats      json.RawMessage      `json:"stats,omitempty"`
	Progress   *mirror.ProgressView `json:"progress,omitempty"`
}

func (s *Server) toSyncJSON(repoName string, ms *meta.MirrorSync) syncJSON {
	out := syncJSON{ID: ms.ID, Repo: repoName, Status: ms.Status, StartedAt: ms.StartedAt, Error: ms.Error, Generation: ms.Generation}
	if !ms.FinishedAt.IsZero() {
		t := ms.FinishedAt
		out.FinishedAt = &t
	}
	if len(ms.Stats) > 0 {
		out.Stats = json.RawMessage(ms.Stats)
	}
	if s.opts.Mirror != nil {
		// Until it has published and recorded its outcome, a sync this
		// node runs is running, whatever its record says so far.
		if pv, id, ok := s.opts.Mirror.Progress(repoName); ok && id == ms.ID {
			out.Progress = &pv
			out.Status, out.FinishedAt, out.Generation = meta.SyncRunning, nil, 0
		}
	}
	return out
}

// startSync serves POST /api/v1/repos/{repo}/sync: it starts a sync of a
// mirror (or joins the running one) and answers 202 with its record, or
// with ?wait=true 200 once it has finished (the record says whether it
// succeeded).
func (s *Server) startSync(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	if s.opts.Mirror == nil {
		s.writeError(w, r, fmt.Errorf("%w: mirrors are not enabled on this server", errNotFound))
		return
	}
	if r.URL.Query().Get("wait") == "true" {
		rec, err := s.opts.Mirror.Sync(r.Context(), name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.toSyncJSON(name, rec))
		return
	}
	rec, _, err := s.opts.Mirror.Start(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/repos/"+name+"/syncs/"+strconv.FormatInt(rec.ID, 10))
	writeJSON(w, http.StatusAccepted, s.toSyncJSON(name, rec))
}

// listSyncs serves GET /api/v1/repos/{repo}/syncs (newest first, ?limit=).
func (s *Server) listSyncs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	rp, err := s.svc.GetRepo(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			s.writeError(w, r, fmt.Errorf("%w: limit %q is not a count", errBadRequest, v))
			return
		}
	}
	recs, err := s.svc.Meta().ListSyncs(r.Context(), rp.ID, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]syncJSON, 0, len(recs))
	for i := range recs {
		out = append(out, s.toSyncJSON(name, &recs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// maxSyncWait bounds the ?wait= of GET …/syncs/{id}.
const maxSyncWait = 60 * time.Second

// getSync serves GET /api/v1/repos/{repo}/syncs/{id}. With ?wait=DURATION
// (at most a minute) it answers once a sync this node runs has ended, or
// when the duration has passed: a client that follows a sync learns its
// end at once, without polling often.
func (s *Server) getSync(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: sync id %q", errNotFound, r.PathValue("id")))
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > maxSyncWait {
			s.writeError(w, r, fmt.Errorf("%w: wait %q is not a duration between 0s and %s", errBadRequest, v, maxSyncWait))
			return
		}
	}
	rp, err := s.svc.GetRepo(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.opts.Mirror != nil && wait > 0 {
		if done, ok := s.opts.Mirror.Running(name, id); ok {
			t := time.NewTimer(wait)
			select {
			case <-done:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
	}
	recs, err := s.svc.Meta().ListSyncs(r.Context(), rp.ID, 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range recs {
		if recs[i].ID == id {
			writeJSON(w, http.StatusOK, s.toSyncJSON(name, &recs[i]))
			return
		}
	}
	s.writeError(w, r, fmt.Errorf("%w: %s has no sync %d", errNotFound, name, id))
}

// snapshotJSON is one snapshot.
type snapshotJSON struct {
	Name       string    `json:"name"`
	Repo       string    `json:"repo"`
	Generation int64     `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	URL        string    `json:"url"`
}

func (s *Server) toSnapshotJSON(r *http.Request, repoName string, sn *meta.Snapshot) snapshotJSON {
	return snapshotJSON{Name: sn.Name, Repo: repoName, Generation: sn.Generation, CreatedAt: sn.CreatedAt,
		URL: s.baseURL(r) + "/" + repoName + "/@" + sn.Name + "/"}
}

// createSnapshot serves POST /api/v1/repos/{repo}/snapshots {"name"}.
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	var req struct {
		Name string `json:"name"`
	}
	if _, err := decodeBody(r, 4<<10, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	sn, err := s.svc.CreateSnapshot(r.Context(), name, req.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.toSnapshotJSON(r, name, sn))
}

// listSnapshots serves GET /api/v1/repos/{repo}/snapshots.
func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	sns, err := s.svc.ListSnapshots(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]snapshotJSON, 0, len(sns))
	for i := range sns {
		out = append(out, s.toSnapshotJSON(r, name, &sns[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSnapshot serves DELETE /api/v1/repos/{repo}/snapshots/{name}.
func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteSnapshot(r.Context(), r.PathValue("repo"), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveSnapshot serves GET /{repo}/@{name}/{path...}.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request, repoName, snap, p string) {
	obj, err := s.svc.LookupSnapshot(r.Context(), repoName, snap, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveObject(w, r, obj)
}
