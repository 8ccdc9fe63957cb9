package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHTTPReads checks the read path of the real server as an HTTP client
// sees it: ranges, HEAD, conditional requests, caching headers, directory
// listings, health and metrics.
func TestHTTPReads(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo = "web"
	s.createRepo(t, repo)
	pkg := buildRPM(t, "web-tool", "1.0", pkgOpts{payload: 32 << 10})
	res := s.mustPut(t, repo, pkg)

	md := fetchRepomd(t, s, repo)
	primaryHref := md.data(t, "primary").Location.Href
	entries := parsePrimary(t, fetchData(t, s, repo, md.data(t, "primary")))
	if len(entries) != 1 {
		t.Fatalf("primary.xml lists %d packages, want 1", len(entries))
	}
	pkgPath := "/" + repo + "/" + entries[0].Location.Href
	if res.URL != s.url+pkgPath {
		t.Errorf("upload answered url %q, primary.xml places the package at %s", res.URL, s.url+pkgPath)
	}

	noRedirect := &http.Client{
		Transport:     s.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req := func(t *testing.T, method, p string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		r, err := http.NewRequest(method, s.url+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, p, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, p, err)
		}
		return resp, b
	}
	expect := func(t *testing.T, resp *http.Response, code int) {
		t.Helper()
		if resp.StatusCode != code {
			t.Fatalf("%s %s: %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.Status, code)
		}
	}

	t.Run("package", func(t *testing.T) {
		resp, b := req(t, "GET", pkgPath)
		expect(t, resp, 200)
		if !bytes.Equal(b, pkg.data) {
			t.Errorf("GET %s: %d bytes that differ from the upload", pkgPath, len(b))
		}
		if got := resp.Header.Get("ETag"); got != `"`+pkg.sha256+`"` {
			t.Errorf("ETag %q, want the quoted sha256 %q", got, pkg.sha256)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-rpm" {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("Cache-Control %q, want immutable for a package", cc)
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, b := req(t, "HEAD", pkgPath)
		expect(t, resp, 200)
		if len(b) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(pkg.data)) {
			t.Errorf("HEAD: %d body bytes, Content-Length %q, want 0 and %d", len(b), resp.Header.Get("Content-Length"), len(pkg.data))
		}
		if resp.Header.Get("ETag") != `"`+pkg.sha256+`"` || resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("HEAD: ETag %q, Accept-Ranges %q", resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
		}
	})

	t.Run("Range", func(t *testing.T) {
		size := len(pkg.data)
		for _, tc := range []struct {
			header     string
			start, end int // inclusive
		}{
			{"bytes=0-99", 0, 99},
			{"bytes=1000-20999", 1000, 20999},
			{fmt.Sprintf("bytes=%d-", size-500), size - 500, size - 1},
			{"bytes=-64", size - 64, size - 1},
		} {
			resp, b := req(t, "GET", pkgPath, "Range", tc.header)
			expect(t, resp, http.StatusPartialContent)
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, size); resp.Header.Get("Content-Range") != want {
				t.Errorf("Range %s: Content-Range %q, want %q", tc.header, resp.Header.Get("Content-Range"), want)
			}
			if !bytes.Equal(b, pkg.data[tc.start:tc.end+1]) {
				t.Errorf("Range %s: wrong bytes (%d of them)", tc.header, len(b))
			}
		}
		resp, _ := req(t, "GET", pkgPath, "Range", fmt.Sprintf("bytes=%d-", size+10))
		expect(t, resp, http.StatusRequestedRangeNotSatisfiable)
	})

	t.Run("conditional", func(t *testing.T) {
		for _, tc := range []struct {
			path string
			// A pointer file can change several times within a second,
			// the resolution of If-Modified-Since: it is validated by
			// ETag only and carries no Last-Modified.
			pointer bool
		}{{pkgPath, false}, {"/" + repo + "/" + primaryHref, false}, {"/" + repo + "/repodata/repomd.xml", true}} {
			p := tc.path
			resp, _ := req(t, "GET", p)
			expect(t, resp, 200)
			etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
			if etag == "" || (lm == "") != tc.pointer {
				t.Errorf("GET %s: ETag %q, Last-Modified %q; want an ETag, and Last-Modified unless a pointer file", p, etag, lm)
				continue
			}
			resp, b := req(t, "GET", p, "If-None-Match", etag)
			if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
				t.Errorf("GET %s If-None-Match %s: %s with %d bytes, want 304", p, etag, resp.Status, len(b))
			}
			resp, _ = req(t, "GET", p, "If-None-Match", `"0000"`)
			expect(t, resp, 200)
			now := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
			if tc.pointer {
				resp, _ = req(t, "GET", p, "If-Modified-Since", now)
				expect(t, resp, 200)
				continue
			}
			resp, b = req(t, "GET", p, "If-Modified-Since", lm)
			if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
				t.Errorf("GET %s If-Modified-Since %s: %s with %d bytes, want 304", p, lm, resp.Status, len(b))
			}
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
			resp, _ = req(t, "GET", p, "If-Modified-Since", old)
			expect(t, resp, 200)
		}
	})

	t.Run("Cache-Control", func(t *testing.T) {
		for _, tc := range []struct {
			path      string
			immutable bool
		}{
			{pkgPath, true},
			{"/" + repo + "/" + primaryHref, true},
			{"/" + repo + "/repodata/repomd.xml", false},
		} {
			resp, _ := req(t, "GET", tc.path)
			expect(t, resp, 200)
			cc := resp.Header.Get("Cache-Control")
			if tc.immutable {
				if !strings.Contains(cc, "immutable") {
					t.Errorf("%s: Cache-Control %q, want immutable", tc.path, cc)
				}
				continue
			}
			m := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(cc)
			if strings.Contains(cc, "immutable") || m == nil {
				t.Errorf("%s: Cache-Control %q, want a short max-age", tc.path, cc)
			} else if age, _ := strconv.Atoi(m[1]); age > 60 {
				t.Errorf("%s: max-age %d, want at most 60 seconds for a pointer file", tc.path, age)
			}
		}
	})

	t.Run("listings", func(t *testing.T) {
		cases := []struct {
			path  string
			links []string
		}{
			{"/" + repo + "/", []string{"repodata/", repo + ".repo"}},
			{"/" + repo + "/repodata/", []string{"repomd.xml", path.Base(primaryHref), "../"}},
		}
		// Every directory on the way to the package links to the next step.
		dir, parts := "/"+repo+"/", strings.Split(entries[0].Location.Href, "/")
		for i, part := range parts {
			if i < len(parts)-1 {
				part += "/"
			}
			cases = append(cases, struct {
				path  string
				links []string
			}{dir, []string{part}})
			dir += part
		}
		for _, tc := range cases {
			resp, b := req(t, "GET", tc.path)
			expect(t, resp, 200)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("%s: Content-Type %q, want text/html", tc.path, ct)
			}
			for _, l := range tc.links {
				if !strings.Contains(string(b), `href="`+l+`"`) {
					t.Errorf("%s: no link to %s in\n%s", tc.path, l, b)
				}
			}
		}
		resp, _ := req(t, "GET", "/"+repo+"/repodata")
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/"+repo+"/repodata/" {
			t.Errorf("GET /%s/repodata: %s to %q, want a redirect to the directory", repo, resp.Status, resp.Header.Get("Location"))
		}
		resp, _ = req(t, "GET", "/"+repo+"/repodata/nothing.xml.gz")
		expect(t, resp, http.StatusNotFound)
	})

	t.Run("health", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, _ := req(t, "GET", p)
			expect(t, resp, 200)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, b := req(t, "GET", "/metrics")
		expect(t, resp, 200)
		body := string(b)
		gen := s.repoInfo(t, repo).CurrentGeneration
		for _, want := range []string{
			`packyard_uploads_total{result="created"} 1`,
			`packyard_upload_visible_seconds_count{repo="web"} 1`,
			fmt.Sprintf(`packyard_repo_generation{repo="web"} %d`, gen),
			`packyard_http_requests_total{code="201",method="PUT",route="PUT /api/v1/repos/{repo}/packages/{filename}"} 1`,
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("/metrics has no line %q", want)
			}
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", body)
		}
	})
}

// TestGracefulShutdown checks that SIGTERM stops an idle server at once
// with exit status 0, and that a server with an upload in flight finishes
// that upload (answer and publish) before it exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, t.TempDir())
		s.createRepo(t, "idle")
		start := time.Now()
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("an idle server took %s to exit after SIGTERM", d)
		}
	})

	t.Run("upload in flight", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		s := startServer(t, data)
		const repo = "busy"
		s.createRepo(t, repo)
		p := buildRPM(t, "busy-tool", "1.0", pkgOpts{payload: 1 << 20})
		open := make(chan struct{})
		release := sync.OnceFunc(func() { close(open) })
		t.Cleanup(release)
		g := newGatedReader(p.data, len(p.data)/2, open)
		type answer struct {
			code int
			body []byte
			err  error
		}
		answered := make(chan answer, 1)
		go func() {
			code, _, body, err := s.putPackage(repo, p.file, g, int64(len(p.data)), expectContinue())
			answered <- answer{code, body, err}
		}()
		select {
		case <-g.reached:
		case <-time.After(30 * time.Second):
			t.Fatal("the upload did not start")
		}
		if err := s.terminate(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := s.logs.waitFor(ctx, s.exited, "shutting down"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.exited:
			t.Errorf("server exited while an upload was in flight: %v", s.cmd.ProcessState)
		default:
		}
		release()
		a := <-answered
		if a.err != nil || a.code != http.StatusCreated {
			t.Errorf("upload in flight during shutdown: status %d, err %v: %s", a.code, a.err, a.body)
		}
		start := time.Now()
		if err := s.waitExit(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("exited %s after the last upload was answered", time.Since(start).Round(time.Millisecond))

		// The upload that finished during the shutdown is published.
		s2 := startServer(t, data)
		if e, ok := byName(fetchPrimary(t, s2, repo))[p.name]; !ok || e.Checksum.Value != p.sha256 {
			t.Errorf("%s, uploaded during the shutdown, is not published after a restart", p.file)
		}
	})
}
