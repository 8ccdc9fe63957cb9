package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestFileRouteAgreesWithMux: every request fileRoute takes past the mux
// is one the mux sends to filePattern, with the same path values; the
// others are left to the mux.
func TestFileRouteAgreesWithMux(t *testing.T) {
	s := &Server{mux: http.NewServeMux(), metrics: NewMetrics()}
	s.routes()
	for _, tc := range []struct {
		method, target string
		fast           bool
	}{
		{"GET", "/el/repodata/repomd.xml", true},
		{"HEAD", "/el/repodata/repomd.xml", true},
		{"GET", "/debian/dists/stable/InRelease", true},
		{"GET", "/debian/pool/main/h/hello/hello_1.0-1_amd64.deb", true},
		{"GET", "/el/@snap/repodata/repomd.xml", true},
		{"GET", "/el/dir/", true},
		{"GET", "/el/", false},
		{"GET", "/el", false},
		{"GET", "/", false},
		{"GET", "/api/v1/repos", false},
		{"GET", "/api/v1/repos/el/syncs/1", false},
		{"GET", "/dav/el/x.rpm", false},
		{"GET", "/healthz", false},
		{"GET", "/metrics", false},
		{"GET", "/el/a//b", false},
		{"GET", "/el/a/../b", false},
		{"GET", "/el/./b", false},
		{"GET", "/el/a%2Fb", false},
		{"PUT", "/el/x.rpm", false},
		{"DELETE", "/el/x.rpm", false},
		{"POST", "/el/x", false},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		repo, rest, ok := fileRoute(r)
		if ok != tc.fast {
			t.Errorf("%s %s: fileRoute %v, want %v", tc.method, tc.target, ok, tc.fast)
			continue
		}
		if !ok {
			continue
		}
		_, pattern := s.mux.Handler(r)
		if pattern != filePattern {
			t.Errorf("%s %s: taken past the mux, which would route it to %q", tc.method, tc.target, pattern)
		}
		// The values the mux would give the handler.
		var got [2]string
		m := http.NewServeMux()
		m.HandleFunc(filePattern, func(_ http.ResponseWriter, r *http.Request) {
			got = [2]string{r.PathValue("repo"), r.PathValue("path")}
		})
		m.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.target, nil))
		if got != [2]string{repo, rest} {
			t.Errorf("%s %s: fileRoute gives %q %q, the mux %q %q", tc.method, tc.target, repo, rest, got[0], got[1])
		}
	}
}
