package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWriteBytesAsServeContent: the fast path for plain GETs of small
// cached files answers with the status, headers and body ServeContent
// gives the same request.
func TestWriteBytesAsServeContent(t *testing.T) {
	body := []byte("Origin: upstream\nSuite: stable\n")
	for _, mod := range []time.Time{{}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			r := httptest.NewRequest(method, "/debian/dists/stable/InRelease", nil)
			if !plainGet(r) {
				t.Fatal("plain request not recognised")
			}
			fast, slow := httptest.NewRecorder(), httptest.NewRecorder()
			for _, w := range []*httptest.ResponseRecorder{fast, slow} {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("ETag", `"abc"`)
			}
			(&Proxy{}).writeBytes(fast, r, body, mod)
			http.ServeContent(slow, r, "InRelease", mod, bytes.NewReader(body))
			if fast.Code != slow.Code || !bytes.Equal(fast.Body.Bytes(), slow.Body.Bytes()) {
				t.Errorf("%s mod=%v: fast %d %q, ServeContent %d %q", method, mod, fast.Code, fast.Body, slow.Code, slow.Body)
			}
			for _, k := range []string{"Content-Length", "Last-Modified", "Accept-Ranges", "Content-Type", "ETag"} {
				if fast.Header().Get(k) != slow.Header().Get(k) {
					t.Errorf("%s mod=%v: %s fast %q, ServeContent %q", method, mod, k, fast.Header().Get(k), slow.Header().Get(k))
				}
			}
		}
	}
	for _, h := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set(h, "x")
		if plainGet(r) {
			t.Errorf("request with %s taken for a plain GET", h)
		}
	}
}
