package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// remoteStore stands for a blob store that is not on local disk: its
// readers are not *os.File (so there is no sendfile), and it counts the
// blobs it is asked to open.
type remoteStore struct {
	blob.Store
	opens atomic.Int64
	fail  atomic.Bool
}

type remoteReader struct{ blob.Reader }

func (s *remoteStore) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	s.opens.Add(1)
	if s.fail.Load() {
		return nil, blob.ErrUnavailable
	}
	r, err := s.Store.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	return remoteReader{r}, nil
}

// TestReadCacheServesIndexFromMemory: with a read cache, the index files
// every client fetches are read from a remote store once and then served
// from memory, byte for byte — still served while the store is down —
// while a file over the cache's entry bound is read from the store each
// time. HEAD requests and the metrics agree.
func TestReadCacheServesIndexFromMemory(t *testing.T) {
	var rs *remoteStore
	e := newEnv(t, envOptions{readCache: 1 << 20, wrapBlobs: func(b blob.Store) blob.Store {
		rs = &remoteStore{Store: b}
		return rs
	}})
	e.createRepo("cached")
	// Random hex compresses to about half: the package is well over the
	// cache's 128 KiB entry bound.
	raw := make([]byte, 400<<10)
	_, _ = rand.Read(raw)
	data := buildRPM(t, "big", "1.0", "1", hex.EncodeToString(raw))
	pkg := e.mustUpload("cached", "big-1.0-1.noarch.rpm", data)

	first := e.get("/cached/repodata/repomd.xml").want(t, http.StatusOK, "first GET repomd.xml")
	opens := rs.opens.Load()
	second := e.get("/cached/repodata/repomd.xml").want(t, http.StatusOK, "second GET repomd.xml")
	if rs.opens.Load() != opens {
		t.Errorf("second GET of repomd.xml opened the store (%d opens, was %d)", rs.opens.Load(), opens)
	}
	if string(first.body) != string(second.body) || second.header.Get("ETag") != first.header.Get("ETag") {
		t.Error("the cached repomd.xml differs from the one read from the store")
	}

	rs.fail.Store(true)
	e.get("/cached/repodata/repomd.xml").want(t, http.StatusOK, "GET repomd.xml while the store is down")
	e.get("/cached/"+pkg.Path).want(t, http.StatusServiceUnavailable, "GET of an uncached large package while the store is down")
	rs.fail.Store(false)

	before := rs.opens.Load()
	for range 2 {
		r := e.get("/cached/"+pkg.Path).want(t, http.StatusOK, "GET the large package")
		if !bytes.Equal(r.body, data) {
			t.Fatalf("package body differs from the upload (%d bytes, want %d)", len(r.body), len(data))
		}
	}
	if got := rs.opens.Load() - before; got != 2 {
		t.Errorf("two GETs of a package over the entry bound opened the store %d times, want 2", got)
	}

	m := string(e.get("/metrics").want(t, http.StatusOK, "metrics").body)
	for _, series := range []string{"packyard_read_cache_hits_total 2", "packyard_read_cache_misses_total", "packyard_read_cache_bytes"} {
		if !strings.Contains(m, series) {
			t.Errorf("/metrics lacks %q", series)
		}
	}
}

// TestReadCacheOffByDefault: without a read cache every GET reads the store.
func TestReadCacheOffByDefault(t *testing.T) {
	var rs *remoteStore
	e := newEnv(t, envOptions{wrapBlobs: func(b blob.Store) blob.Store {
		rs = &remoteStore{Store: b}
		return rs
	}})
	e.createRepo("plain")
	e.mustUpload("plain", "p-1.0-1.noarch.rpm", buildRPM(t, "p", "1.0", "1", "x"))
	e.get("/plain/repodata/repomd.xml").want(t, http.StatusOK, "GET repomd.xml")
	before := rs.opens.Load()
	e.get("/plain/repodata/repomd.xml").want(t, http.StatusOK, "GET repomd.xml again")
	if rs.opens.Load() == before {
		t.Error("without a read cache, the second GET did not read the store")
	}
	if m := string(e.get("/metrics").body); strings.Contains(m, "packyard_read_cache_hits_total") {
		t.Error("/metrics shows read cache series without a cache")
	}
}
