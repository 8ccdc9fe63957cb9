package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxyWarmPointer: GETs of a small file a proxy repository has
// cached (every client of a fleet asking for InRelease), through a real
// listener and keep-alive connection; allocs/op is the server's and the
// client's together.
func BenchmarkProxyWarmPointer(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		_, _ = io.WriteString(w, strings.Repeat("Origin: bench\n", 200))
	}))
	b.Cleanup(up.Close)
	srvURL, admin := newProxyServer(b)
	req, _ := http.NewRequest(http.MethodPost, srvURL+"/api/v1/repos", strings.NewReader(
		`{"name":"deb","format":"deb","kind":"proxy","config":{"upstreams":["`+up.URL+`/"]}}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("create: %d", resp.StatusCode)
	}
	u := srvURL + "/deb/dists/stable/InRelease"
	get := func() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET: %d", resp.StatusCode)
		}
	}
	get()
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}
