package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blobbatch"
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

// getBlobs streams several blobs in one response, for edge agents copying
// many small files (a fresh edge of a large repository): one request and
// one authentication instead of one per file. The body is the digests,
// one per line; the answer is in internal/blobbatch's format. A store failing in the middle aborts the connection, so
// the client sees a cut body, never a short blob.
func (s *Server) getBlobs(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, blobbatch.MaxDigests*66+1))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: read body: %v", errBadRequest, err))
		return
	}
	if len(body) > blobbatch.MaxDigests*66 {
		s.writeError(w, r, fmt.Errorf("%w: at most %d digests per request", errBadRequest, blobbatch.MaxDigests))
		return
	}
	var digests []blob.Digest
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		d, err := blob.ParseDigest(line)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("%w: %v", errBadRequest, err))
			return
		}
		digests = append(digests, d)
	}
	if len(digests) == 0 || len(digests) > blobbatch.MaxDigests {
		s.writeError(w, r, fmt.Errorf("%w: between 1 and %d digests, one per line", errBadRequest, blobbatch.MaxDigests))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.packyard.blobs")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	for _, d := range digests {
		rd, err := s.svc.Blobs().Open(ctx, d)
		if errors.Is(err, blob.ErrNotFound) {
			if err := blobbatch.WriteHeader(w, string(d), blobbatch.Missing); err != nil {
				return
			}
			continue
		}
		if err != nil {
			s.log.Warn("blob batch: store failed, aborting the response", "digest", d, "err", err)
			panic(http.ErrAbortHandler)
		}
		size, err := rd.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = rd.Seek(0, io.SeekStart)
		}
		if err == nil {
			err = blobbatch.WriteHeader(w, string(d), size)
		}
		if err == nil {
			var n int64
			n, err = io.CopyN(w, rd, size)
			if err == nil && n != size {
				err = io.ErrUnexpectedEOF
			}
		}
		rd.Close()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("blob batch: aborting the response", "digest", d, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
}
