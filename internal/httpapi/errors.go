package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/mirror"
	"github.com/packyard/packyard/internal/repo"
)

// apiError is the JSON body of every error response.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Existing names the package already there, on 409.
	Existing *packageJSON `json:"existing,omitempty"`
}

// statusOf decides the HTTP status and error code of err: the one place
// where errors become statuses.
func statusOf(err error) (int, string) {
	if st, code, ok := keyStatus(err); ok {
		return st, code
	}
	switch {
	case errors.Is(err, repo.ErrRepoNotFound), errors.Is(err, repo.ErrPackageNotFound), errors.Is(err, repo.ErrObjectNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, repo.ErrSnapshotNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, repo.ErrSnapshotExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, mirror.ErrNotMirror):
		return http.StatusBadRequest, "not_mirror"
	case errors.Is(err, mirror.ErrBusy):
		return http.StatusConflict, "busy"
	case errors.Is(err, repo.ErrRepoExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, repo.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, repo.ErrInvalidRepo):
		return http.StatusBadRequest, "invalid_repository"
	case errors.Is(err, repo.ErrNotHosted):
		return http.StatusMethodNotAllowed, "not_hosted"
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errConflictName):
		return http.StatusConflict, "exists"
	case errors.Is(err, blob.ErrTooLarge), errors.Is(err, format.ErrPackageTooLarge), errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, format.ErrInvalidPackage):
		return http.StatusBadRequest, "invalid_package"
	case errors.Is(err, auth.ErrInvalidToken):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, auth.ErrInvalidScope), errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, meta.ErrUnavailable), errors.Is(err, blob.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

var (
	errBadRequest   = errors.New("bad request")
	errUnauthorized = errors.New("authentication required: send a token as 'Authorization: Bearer <token>' or as the Basic auth password")
	errForbidden    = errors.New("forbidden")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers err as JSON with the status statusOf decides.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := statusOf(err)
	body := apiError{Error: err.Error(), Code: code}
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body.Error = "internal error: " + err.Error()
	}
	var ce *repo.ConflictError
	if errors.As(err, &ce) {
		pj := toPackageJSON(r.PathValue("repo"), ce.Existing)
		body.Existing = &pj
	}
	if status == http.StatusServiceUnavailable {
		s.log.Warn("request failed: a backend is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="packyard", charset="UTF-8"`)
	}
	writeJSON(w, status, body)
}

var (
	errTooLarge     = errors.New("too large")
	errConflictName = errors.New("name taken")
	errNotFound     = errors.New("not found")
)
