package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

func TestRedirectsStayWithinConfiguredOrigins(t *testing.T) {
	data := []byte("package bytes")
	// inside stands for a host of the server's own network that no
	// upstream should be able to point the proxy at.
	inside := newUpstream(t)
	inside.set("secret", []byte("metadata of the inside network"))
	mirror := newUpstream(t)
	mirror.set("elsewhere/ok.rpm", data)
	chain := func(n int) func(u *upstream) {
		return func(u *upstream) {
			u.redirects["Packages/ok.rpm"] = "/r1"
			for i := 1; i < n; i++ {
				u.redirects[fmt.Sprintf("r%d", i)] = fmt.Sprintf("/r%d", i+1)
			}
			u.set(fmt.Sprintf("r%d", n), data)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(u *upstream)
		want  int
	}{
		{"same origin", func(u *upstream) {
			u.redirects["Packages/ok.rpm"] = "/moved/ok.rpm"
			u.set("moved/ok.rpm", data)
		}, http.StatusOK},
		{"another configured upstream", func(u *upstream) {
			u.redirects["Packages/ok.rpm"] = mirror.srv.URL + "/elsewhere/ok.rpm"
		}, http.StatusOK},
		{"another host", func(u *upstream) {
			u.redirects["Packages/ok.rpm"] = inside.srv.URL + "/secret"
		}, http.StatusBadGateway},
		{"another host, second hop", func(u *upstream) {
			u.redirects["Packages/ok.rpm"] = "/hop"
			u.redirects["hop"] = inside.srv.URL + "/secret"
		}, http.StatusBadGateway},
		{"five hops", chain(maxRedirects), http.StatusOK},
		{"six hops", chain(maxRedirects + 1), http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			tc.setup(u)
			// The mirror is listed second, without the package: only a
			// redirect reaches its copy.
			e := newEnv(t, meta.FormatRPM, u)
			e.cfg.Upstreams = append(e.cfg.Upstreams, mirror.srv.URL+"/")
			code, b, _, err := e.get(t, "Packages/ok.rpm")
			if err != nil || code != tc.want {
				t.Fatalf("GET: %d %v %s, want %d", code, err, b, tc.want)
			}
			if code == http.StatusOK && !bytes.Equal(b, data) {
				t.Fatalf("GET: %q", b)
			}
			if code == http.StatusBadGateway && !strings.Contains(string(b), "redirect") {
				t.Errorf("error does not say a redirect was refused: %s", b)
			}
		})
	}
	if n := inside.count("secret"); n != 0 {
		t.Errorf("the proxy followed a redirect to another host %d times", n)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{
		"Packages/foo-1.0-1.x86_64.rpm",
		"pool/main/f/foo/foo+bar_1:2.0~rc1_amd64.deb",
		"pool/a b.deb",
		"pool/a%zz.deb", // a literal '%': escaped upstream
		"pool/a%2e%2eb.deb",
		"pool/ünï.deb",
	} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v, want ok", p, err)
		}
	}
	for _, p := range []string{
		"", "pool//a.deb", "pool/./a.deb", "pool/../a.deb", "..",
		"pool/%2e%2e/a.deb", "pool/%2E%2e/a.deb", "pool/%252e%252e/a.deb", "pool/%25252e%25252e/a.deb", "pool/.%2e/a.deb",
		"pool/a?b.deb", "pool/a%3Fb.deb", "pool/a#b.deb", "pool/a%23b.deb", "pool/a%2fb.deb", "pool/a%252fb.deb",
		"pool\\a.deb", "pool/a%5cb.deb", "pool/a\x00b.deb", "pool/a%00b.deb", "pool/a\nb.deb", "pool/a%0Ab.deb", "pool/a\x7fb",
		"pool/\xff.deb",
	} {
		if err := CheckPath(p); err == nil {
			t.Errorf("CheckPath(%q) = nil, want an error", p)
		}
	}
}

// TestPathsReachUpstreamUnchanged: what a client asks for is what the
// upstream is asked for, segment by segment; a path that could mean
// something else upstream is refused before any request.
func TestPathsReachUpstreamUnchanged(t *testing.T) {
	u := newUpstream(t)
	e := newEnv(t, meta.FormatDeb, u)
	for _, tc := range []struct {
		client string // as sent on the wire
		want   string // RequestURI the upstream must see; "" refused
	}{
		{"/pool/foo+bar_1.0~rc1_amd64.deb", "/pool/foo+bar_1.0~rc1_amd64.deb"},
		{"/pool/a%20b.deb", "/pool/a%20b.deb"},
		// A literal "%2e%2e" inside a name stays a name.
		{"/pool/x%252e%252ey.deb", "/pool/x%252e%252ey.deb"},
		{"/pool/%252e%252e/%252e%252e/etc/passwd", ""},
		{"/pool/%2e%2e/x.deb", ""},
		{"/pool/x%3Fy.deb", ""},
		{"/pool/x%253Fy.deb", ""},
		{"/pool/x%23y.deb", ""},
		{"/pool/x%5Cy.deb", ""},
		{"/pool/x%00y.deb", ""},
		{"/pool/x%0Dy.deb", ""},
	} {
		u.mu.Lock()
		u.uris = nil
		u.mu.Unlock()
		req, err := http.NewRequest(http.MethodGet, e.srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Sent as written, not re-encoded by the client.
		req.URL.Opaque = "//" + req.URL.Host + tc.client
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.client, err)
		}
		resp.Body.Close()
		u.mu.Lock()
		uris := append([]string(nil), u.uris...)
		u.mu.Unlock()
		if tc.want == "" {
			if resp.StatusCode != http.StatusBadRequest || len(uris) != 0 {
				t.Errorf("%s: %d, upstream asked for %q; want 400 and no upstream request", tc.client, resp.StatusCode, uris)
			}
			continue
		}
		if len(uris) != 1 || uris[0] != tc.want {
			t.Errorf("%s: upstream asked for %q, want [%s]", tc.client, uris, tc.want)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	for p, want := range map[string]string{
		"pool/a b.deb":     "https://m.example/d/pool/a%20b.deb",
		"pool/a%2e%2e":     "https://m.example/d/pool/a%252e%252e",
		"pool/a+b:1~2.deb": "https://m.example/d/pool/a+b:1~2.deb",
	} {
		got := upstreamURL("https://m.example/d/", p)
		if got != want {
			t.Errorf("upstreamURL(%q) = %s, want %s", p, got, want)
		}
		u, err := url.Parse(got)
		if err != nil || u.Path != "/d/"+p {
			t.Errorf("%s parses to path %q (%v), want /d/%s", got, u.Path, err, p)
		}
	}
}

// TestUpstreamBackoff: an upstream that failed is not asked again for a
// while: the next misses fail (or fail over) at once.
func TestUpstreamBackoff(t *testing.T) {
	u := newUpstream(t)
	u.set("Packages/a.rpm", []byte("aaa"))
	u.set("Packages/b.rpm", []byte("bbb"))
	u.down = true
	e := newEnv(t, meta.FormatRPM, u)
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	if code, _, _, _ := e.get(t, "Packages/a.rpm"); code != http.StatusBadGateway {
		t.Fatalf("upstream down: %d, want 502", code)
	}
	u.mu.Lock()
	u.down = false
	u.mu.Unlock()
	code, b, _, _ := e.get(t, "Packages/b.rpm")
	if code != http.StatusBadGateway || !strings.Contains(string(b), "failed recently") {
		t.Errorf("within the backoff: %d %s, want 502 saying the upstream failed recently", code, b)
	}
	if n := u.count("Packages/b.rpm"); n != 0 {
		t.Errorf("the upstream was asked %d times within its backoff", n)
	}
	mu.Lock()
	clock = clock.Add(backoffMin)
	mu.Unlock()
	if code, b, _, _ := e.get(t, "Packages/b.rpm"); code != http.StatusOK || string(b) != "bbb" {
		t.Errorf("after the backoff: %d %s", code, b)
	}
}

// TestContentTypeByPath: an upstream's Content-Type is not passed on
// (text/html from an upstream would be served from packyard's origin).
func TestContentTypeByPath(t *testing.T) {
	u := newUpstream(t)
	u.set("Packages/x.html", []byte("<script>alert(1)</script>"))
	u.ctype["Packages/x.html"] = "text/html"
	u.set("Packages/x.rpm", []byte("rpm"))
	u.ctype["Packages/x.rpm"] = "text/html; charset=utf-8"
	e := newEnv(t, meta.FormatRPM, u)
	for p, want := range map[string]string{"Packages/x.html": "application/octet-stream", "Packages/x.rpm": "application/x-rpm"} {
		for _, result := range []string{"miss", "hit"} {
			code, _, h, err := e.get(t, p)
			if err != nil || code != 200 || h.Get(HeaderCache) != result {
				t.Fatalf("%s: %d %v %s", p, code, err, h.Get(HeaderCache))
			}
			if h.Get("Content-Type") != want || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s (%s): Content-Type %q, nosniff %q; want %s", p, result, h.Get("Content-Type"), h.Get("X-Content-Type-Options"), want)
			}
		}
	}
}
