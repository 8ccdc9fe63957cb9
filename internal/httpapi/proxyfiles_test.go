package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/proxy"
	"github.com/packyard/packyard/internal/repo"
)

// TestProxyPathsReachUpstreamUnchanged runs client paths through the whole
// stack (ServeMux decoding, serveFile, serveProxy) to an upstream that logs
// what it is asked: a path that would mean something else upstream is a
// 400 and reaches no upstream; others arrive segment for segment.
func TestProxyPathsReachUpstreamUnchanged(t *testing.T) {
	var mu sync.Mutex
	var uris []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris = append(uris, r.RequestURI)
		mu.Unlock()
		_, _ = w.Write([]byte("bytes"))
	}))
	t.Cleanup(up.Close)

	srvURL, admin := newProxyServer(t)
	body := `{"name":"cache","format":"deb","kind":"proxy","upstreams":["` + up.URL + `/d/"]}`
	req, _ := http.NewRequest(http.MethodPost, srvURL+"/api/v1/repos", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create proxy repository: %d %s", resp.StatusCode, msg)
	}

	for _, tc := range []struct {
		client string // as sent on the wire
		want   string // RequestURI the upstream must see; "" refused with 400, "404" with 404
	}{
		{"/cache/pool/foo+bar_1.0~rc1_amd64.deb", "/d/pool/foo+bar_1.0~rc1_amd64.deb"},
		{"/cache/pool/a%20b.deb", "/d/pool/a%20b.deb"},
		{"/cache/pool/x%252e%252ey.deb", "/d/pool/x%252e%252ey.deb"},
		{"/cache/pool/%252e%252e/%252e%252e/etc/passwd", ""},

		{"/cache/pool/x%3Fy.deb", ""},
		{"/cache/pool/x%23y.deb", ""},
		{"/cache/pool/x%5Cy.deb", ""},
		{"/cache/pool/x%00y.deb", ""},
		{"/cache/pool/x%09y.deb", ""},
		// Decoded by ServeMux into "..": serveFile's own check answers
		// 404 before the proxy sees it (below).
		{"/cache/pool/%2e%2e%2f%2e%2e/etc/passwd", "404"},
	} {
		mu.Lock()
		uris = nil
		mu.Unlock()
		req, err := http.NewRequest(http.MethodGet, srvURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = "//" + req.URL.Host + tc.client
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.client, err)
		}
		resp.Body.Close()
		mu.Lock()
		got := append([]string(nil), uris...)
		mu.Unlock()
		if tc.want == "" || tc.want == "404" {
			want := http.StatusBadRequest
			if tc.want == "404" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want || len(got) != 0 {
				t.Errorf("%s: %d, upstream asked for %q; want %d and no upstream request", tc.client, resp.StatusCode, got, want)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %d, upstream asked for %q, want [%s]", tc.client, resp.StatusCode, got, tc.want)
		}
	}
}

// newProxyServer starts an API server with a proxy for deb repositories
// and returns its URL and admin token.
func newProxyServer(t testing.TB) (string, string) {
	t.Helper()
	api, admin := newProxyAPI(t)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL, admin
}

// newProxyAPI is the API server of newProxyServer, and the admin token.
func newProxyAPI(t testing.TB) (*httpapi.Server, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "packyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	tokPath, _, err := auth.EnsureAdmin(ctx, db, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	metrics := httpapi.NewMetrics()
	svc := repo.New(blobs, db, []format.Format{deb.New()}, log, repo.Options{Metrics: metrics})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	px := proxy.New(proxy.Options{Blobs: blobs, Meta: db, Log: log, TempDir: dir})
	api := httpapi.New(svc, auth.New(db), metrics, log, httpapi.Options{Proxy: px})
	t.Cleanup(func() {
		px.Close()
		svc.Close()
		_ = db.Close()
		_ = blobs.Close()
	})
	return api, strings.TrimSpace(string(secret))
}

// TestProxyConfigChangeTakesEffect: the read path keeps a proxy
// repository in memory, and a PATCH of its upstreams is used by the very
// next request.
func TestProxyConfigChangeTakesEffect(t *testing.T) {
	upstream := func(body string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := upstream("from a"), upstream("from b")
	srvURL, admin := newProxyServer(t)
	call := func(method, p, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srvURL+p, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	if code, msg := call(http.MethodPost, "/api/v1/repos", `{"name":"c","format":"deb","kind":"proxy","upstreams":["`+a.URL+`/"]}`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, msg)
	}
	if code, msg := call(http.MethodGet, "/c/pool/one.deb", ""); code != http.StatusOK || msg != "from a" {
		t.Fatalf("GET before the change: %d %q", code, msg)
	}
	if code, msg := call(http.MethodPatch, "/api/v1/repos/c", `{"upstreams":["`+b.URL+`/"]}`); code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", code, msg)
	}
	if code, msg := call(http.MethodGet, "/c/pool/two.deb", ""); code != http.StatusOK || msg != "from b" {
		t.Errorf("GET after the change: %d %q, want the new upstream's bytes", code, msg)
	}
	if code, _ := call(http.MethodDelete, "/api/v1/repos/c", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if code, _ := call(http.MethodGet, "/c/pool/one.deb", ""); code != http.StatusNotFound {
		t.Errorf("GET of a deleted proxy repository: %d, want 404", code)
	}
}
