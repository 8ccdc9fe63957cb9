package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/meta"
)

type tokenJSON struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	Repos     []string   `json:"repos,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	// Token is the secret, present only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

func toTokenJSON(t *meta.Token) tokenJSON {
	tj := tokenJSON{ID: t.ID, Name: t.Name, Scope: t.Scope, Repos: t.Repos, CreatedAt: t.CreatedAt}
	if !t.LastUsed.IsZero() {
		lu := t.LastUsed
		tj.LastUsed = &lu
	}
	return tj
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.svc.Meta().ListTokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(toks))
	for i := range toks {
		out = append(out, toTokenJSON(&toks[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

type createTokenRequest struct {
	Name  string   `json:"name"`
	Scope string   `json:"scope"`
	Repos []string `json:"repos"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if _, err := decodeBody(r, 64<<10, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == "" {
		s.writeError(w, r, fmt.Errorf("%w: name is required", errBadRequest))
		return
	}
	t, secret, err := auth.Create(r.Context(), s.svc.Meta(), req.Name, req.Scope, req.Repos)
	if err != nil {
		if errors.Is(err, meta.ErrExists) {
			err = fmt.Errorf("%w: a token named %q exists", errConflictName, req.Name)
		}
		s.writeError(w, r, err)
		return
	}
	tj := toTokenJSON(t)
	tj.Token = secret
	writeJSON(w, http.StatusCreated, tj)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	err := s.svc.Meta().DeleteToken(r.Context(), r.PathValue("name"))
	if errors.Is(err, meta.ErrNotFound) {
		err = fmt.Errorf("%w: no token named %q", errNotFound, r.PathValue("name"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p == nil {
		writeJSON(w, http.StatusOK, map[string]any{"anonymous": true})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "scope": p.Scope, "repos": p.Repos})
}
