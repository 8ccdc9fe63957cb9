package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/repo"
)

// getBlob serves a blob by digest, whatever names it: peers repairing
// their stores (packyard verify --repair-from) and edge replicas fetch
// what they lack this way. Its name is its content, so it is immutable.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	d, err := blob.ParseDigest(r.PathValue("digest"))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", errBadRequest, err))
		return
	}
	info, err := s.svc.Blobs().Stat(r.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		s.writeError(w, r, fmt.Errorf("%w: blob %s", errNotFound, d))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveObject(w, r, &repo.Object{Path: "blobs/" + string(d), Digest: string(d), Size: info.Size,
		ContentType: "application/octet-stream", ModTime: info.ModTime, Package: true})
}
