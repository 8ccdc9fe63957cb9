package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// failingStore is a blob store whose readers, once fail is set, yield a
// few bytes and then fail as a remote store that went away does.
type failingStore struct {
	blob.Store
	fail atomic.Bool
}

func (s *failingStore) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	r, err := s.Store.Open(ctx, d)
	if err != nil || !s.fail.Load() {
		return r, err
	}
	return &failingReader{Reader: r, left: 16}, nil
}

type failingReader struct {
	blob.Reader
	left int
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, fmt.Errorf("read blob: %w: connection reset", blob.ErrUnavailable)
	}
	n, err := r.Reader.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}

// TestReadStoreFailsMidway: when a remote blob store fails after the first
// bytes of a small file, the client gets a clean 503, not a 200 cut short.
func TestReadStoreFailsMidway(t *testing.T) {
	var fs *failingStore
	e := newEnv(t, envOptions{wrapBlobs: func(b blob.Store) blob.Store {
		fs = &failingStore{Store: b}
		return fs
	}})
	e.createRepo("flaky")
	pkg := e.mustUpload("flaky", "flaky-1.0-1.noarch.rpm", buildRPM(t, "flaky", "1.0", "1", "a small payload"))
	primary := e.repodataHref("flaky", "primary")
	fs.fail.Store(true)
	for _, p := range []string{"/flaky/repodata/repomd.xml", "/flaky/" + primary, "/flaky/" + pkg.Path} {
		r := e.get(p)
		r.want(t, http.StatusServiceUnavailable, "GET "+p+" while the store fails")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", p)
		}
		if msg, code := r.apiErr(t); code != "unavailable" || !strings.Contains(msg, "unavailable") {
			t.Errorf("GET %s: error %q (%s), want one that says the store is unavailable", p, msg, code)
		}
	}
	fs.fail.Store(false)
	e.get("/flaky/repodata/repomd.xml").want(t, http.StatusOK, "GET repomd.xml once the store is back")
}
