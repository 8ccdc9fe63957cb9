package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// repoJSON is the API form of a repository.
type repoJSON struct {
	Name              string          `json:"name"`
	Format            string          `json:"format"`
	Kind              string          `json:"kind"`
	Config            json.RawMessage `json:"config,omitempty"`
	CurrentGeneration int64           `json:"current_generation"`
	CreatedAt         time.Time       `json:"created_at"`
	URL               string          `json:"url,omitempty"`
	// Signing lists the keys that sign the repository's metadata.
	Signing []signingKeyJSON `json:"signing"`
}

type signingKeyJSON struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

func (s *Server) toRepoJSON(r *http.Request, rp *meta.Repo) repoJSON {
	out := repoJSON{
		Name: rp.Name, Format: rp.Format, Kind: rp.Kind, Config: rp.Config,
		CurrentGeneration: rp.CurrentGeneration, CreatedAt: rp.CreatedAt,
		URL: s.baseURL(r) + "/" + rp.Name + "/", Signing: []signingKeyJSON{},
	}
	keys, err := s.svc.SigningKeys(rp)
	if err != nil {
		s.log.Warn("repository names a signing key that is missing", "repo", rp.Name, "err", err)
	}
	for _, k := range keys {
		out.Signing = append(out.Signing, signingKeyJSON{Name: k.Name, Fingerprint: k.Fingerprint})
	}
	return out
}

func (s *Server) listRepos(w http.ResponseWriter, r *http.Request) {
	repos, err := s.svc.ListRepos(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]repoJSON, 0, len(repos))
	for i := range repos {
		out = append(out, s.toRepoJSON(r, &repos[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// createRepoRequest is the body of POST /api/v1/repos. Fields other than
// name, format and kind are kept as the repository's configuration.
type createRepoRequest struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Kind   string `json:"kind"`
	// FromSnapshot ("REPO@NAME") seeds a new hosted repository with a
	// snapshot's packages.
	FromSnapshot string `json:"from_snapshot"`
}

func decodeBody(r *http.Request, limit int64, v any) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %v", errBadRequest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body larger than %d bytes", errBadRequest, limit)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%w: body is not valid JSON: %v", errBadRequest, err)
	}
	return b, nil
}

func (s *Server) createRepo(w http.ResponseWriter, r *http.Request) {
	var req createRepoRequest
	raw, err := decodeBody(r, 1<<20, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cfg, err := configOf(raw)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rp, err := s.svc.CreateRepo(r.Context(), repo.RepoSpec{Name: req.Name, Format: req.Format, Kind: req.Kind, Config: cfg})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.FromSnapshot != "" {
		if err := s.svc.SeedFromSnapshot(r.Context(), rp.Name, req.FromSnapshot); err != nil {
			// Nothing stays behind of a repository that could not be seeded.
			if derr := s.svc.DeleteRepo(context.WithoutCancel(r.Context()), rp.Name); derr != nil {
				s.log.Error("delete a repository whose seeding failed", "repo", rp.Name, "err", derr)
			}
			s.writeError(w, r, err)
			return
		}
		if rp, err = s.svc.GetRepo(r.Context(), rp.Name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	w.Header().Set("Location", "/api/v1/repos/"+rp.Name)
	writeJSON(w, http.StatusCreated, s.toRepoJSON(r, rp))
}

// configOf keeps every field of a repository document except the ones
// stored in their own columns. The settings may also come nested in a
// "config" object, as GET /api/v1/repos/NAME shows them, so that a
// document read back can be sent again; a setting given both ways is an
// error rather than a silent choice.
func configOf(raw []byte) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: body must be a JSON object", errBadRequest)
	}
	nested := m["config"]
	for _, k := range []string{"name", "format", "kind", "current_generation", "created_at", "url", "config", "signing", "from_snapshot"} {
		delete(m, k)
	}
	if len(nested) > 0 && string(nested) != "null" {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(nested, &inner); err != nil {
			return nil, fmt.Errorf("%w: config must be a JSON object of settings", errBadRequest)
		}
		for k, v := range inner {
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%w: setting %s is given both at the top level and in config", errBadRequest, k)
			}
			m[k] = v
		}
	}
	return json.Marshal(m)
}

func (s *Server) showRepo(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toRepoJSON(r, rp))
}

func (s *Server) patchRepo(w http.ResponseWriter, r *http.Request) {
	var m map[string]json.RawMessage
	raw, err := decodeBody(r, 1<<20, &m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, k := range []string{"name", "format", "kind"} {
		if _, ok := m[k]; ok {
			s.writeError(w, r, fmt.Errorf("%w: %s cannot be changed; create a new repository instead", errBadRequest, k))
			return
		}
	}
	cfg, err := configOf(raw)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rp, err := s.svc.UpdateRepoConfig(r.Context(), r.PathValue("repo"), cfg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toRepoJSON(r, rp))
}

func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteRepo(r.Context(), r.PathValue("repo")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type generationJSON struct {
	Number    int64     `json:"number"`
	Seq       int64     `json:"seq"`
	CreatedAt time.Time `json:"created_at"`
	Current   bool      `json:"current"`
}

func (s *Server) listGenerations(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	gens, err := s.svc.Meta().ListGenerations(r.Context(), rp.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]generationJSON, 0, len(gens))
	for _, g := range gens {
		out = append(out, generationJSON{Number: g.Number, Seq: g.Seq, CreatedAt: g.CreatedAt, Current: g.Number == rp.CurrentGeneration})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ready\n")
}

// baseURL is the public URL of the server for generated configuration.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
