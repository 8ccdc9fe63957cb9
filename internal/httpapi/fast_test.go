package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/httpfast"
)

// countingFast counts the requests the fast path answered.
type countingFast struct {
	api *httpapi.Server
	n   atomic.Int64
}

func (c *countingFast) ServeFast(req *httpfast.Request, resp *httpfast.Response) bool {
	ok := c.api.ServeFast(req, resp)
	if ok {
		c.n.Add(1)
	}
	return ok
}

// startFast serves api behind a fast listener, as packyard serve does,
// and returns its URL and the counter of the fast path's answers.
func startFast(t *testing.T, api *httpapi.Server) (string, *countingFast) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingFast{api: api}
	fl := httpfast.Listen(ln, httpfast.Options{Handler: counted, IdleTimeout: time.Minute})
	hs := &http.Server{Handler: api}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(fl) }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := fl.Shutdown(ctx); err != nil {
			t.Errorf("fast listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), counted
}

// getOnce does one request on a new keep-alive connection (one the fast
// path handed to net/http stays with it).
func getOnce(t *testing.T, base, method, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// fastCase is a request sent both to net/http alone and to the fast
// listener, and whether the fast path must answer it.
type fastCase struct {
	name, method, path string
	hdr                http.Header
	fast               bool
}

// compareFast checks that each case gets the same status, headers (but
// Date) and body from both servers, and is answered by the fast path or
// not as it says.
func compareFast(t *testing.T, plain, fast string, counted *countingFast, cases []fastCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counted.n.Load()
			want, wantBody := getOnce(t, plain, tc.method, tc.path, tc.hdr)
			got, gotBody := getOnce(t, fast, tc.method, tc.path, tc.hdr)
			if n := counted.n.Load() - before; n != map[bool]int64{true: 1, false: 0}[tc.fast] {
				t.Fatalf("fast path answered %d; want it to answer: %v", n, tc.fast)
			}
			if got.StatusCode != want.StatusCode || gotBody != wantBody {
				t.Fatalf("fast: %d, %d bytes; net/http: %d, %d bytes", got.StatusCode, len(gotBody), want.StatusCode, len(wantBody))
			}
			for _, h := range []http.Header{got.Header, want.Header} {
				if _, err := http.ParseTime(h.Get("Date")); err != nil {
					t.Fatalf("Date %q: %v", h.Get("Date"), err)
				}
				h.Del("Date")
			}
			if !equalHeaders(got.Header, want.Header) {
				t.Fatalf("headers differ:\nfast:     %v\nnet/http: %v", got.Header, want.Header)
			}
		})
	}
}

// TestFastPathAnswersAsServeHTTP: behind the fast listener, the requests
// the fast path takes for a proxy repository (fresh pointer files, cached
// small files) get the same status, headers (but Date) and body as
// ServeHTTP gives them; the others (credentials, ranges, preconditions,
// group members, other repositories) reach ServeHTTP.
func TestFastPathAnswersAsServeHTTP(t *testing.T) {
	var upstream atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream.Add(1)
		w.Header().Set("ETag", `"v1"`)
		_, _ = io.WriteString(w, strings.Repeat("Origin: fast "+r.URL.Path+"\n", 50))
	}))
	t.Cleanup(up.Close)
	api, admin := newProxyAPI(t)
	plain := httptest.NewServer(api)
	t.Cleanup(plain.Close)
	fast, counted := startFast(t, api)

	req, _ := http.NewRequest(http.MethodPost, plain.URL+"/api/v1/repos", strings.NewReader(
		`{"name":"deb","format":"deb","kind":"proxy","upstreams":["`+up.URL+`/"],"max_age":"1h"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	const (
		pointer = "/deb/dists/stable/InRelease"
		pkg     = "/deb/pool/main/h/hello/hello_1.0_all.deb"
	)
	// The fast path never fetches: the first request goes to net/http,
	// which caches the file; the second may too, to hold its bytes in
	// memory (a hit).
	for _, p := range []string{pointer, pkg} {
		for i := range 2 {
			before := counted.n.Load()
			if resp, _ := getOnce(t, fast, http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("warm %s: %d", p, resp.StatusCode)
			}
			if i == 0 && counted.n.Load() != before {
				t.Fatalf("the fast path answered %s, not cached yet", p)
			}
		}
	}
	etag := func() string {
		r, _ := getOnce(t, plain.URL, http.MethodGet, pointer, nil)
		return r.Header.Get("ETag")
	}()
	fetched := upstream.Load()

	compareFast(t, plain.URL, fast, counted, []fastCase{
		{"pointer", http.MethodGet, pointer, nil, true},
		{"pointer HEAD", http.MethodHead, pointer, nil, true},
		{"package", http.MethodGet, pkg, nil, true},
		{"package, Connection: close", http.MethodGet, pkg, http.Header{"Connection": {"close"}}, true},
		// A pointer file has no Last-Modified: net/http ignores the
		// header (apt and pacman send it).
		{"pointer, If-Modified-Since", http.MethodGet, pointer, http.Header{"If-Modified-Since": {time.Now().UTC().Format(http.TimeFormat)}}, true},
		{"package, If-Modified-Since", http.MethodGet, pkg, http.Header{"If-Modified-Since": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}, false},
		{"package, old If-Modified-Since", http.MethodGet, pkg, http.Header{"If-Modified-Since": {"Mon, 02 Jan 2006 15:04:05 GMT"}}, false},
		{"through a load balancer", http.MethodGet, pointer, http.Header{"X-Forwarded-For": {"10.0.0.1"}, "X-Forwarded-Proto": {"https"}}, true},
		{"pointer's companion", http.MethodGet, "/deb/dists/stable/Release", nil, false},
		{"range", http.MethodGet, pkg, http.Header{"Range": {"bytes=3-9"}}, false},
		{"precondition", http.MethodGet, pointer, http.Header{"If-None-Match": {etag}}, false},
		{"credentials", http.MethodGet, pointer, http.Header{"Authorization": {"Bearer " + admin}}, false},
		{"bad credentials", http.MethodGet, pointer, http.Header{"Authorization": {"Bearer nope"}}, false},
		{"cache-only", http.MethodGet, pointer, http.Header{"X-Packyard-Cache-Only": {"1"}}, false},
		{"unknown repository", http.MethodGet, "/nope/dists/stable/InRelease", nil, false},
		{"listing", http.MethodGet, "/deb/dists/", nil, false},
	})
	if n := upstream.Load(); n != fetched {
		t.Fatalf("%d upstream requests during the comparison", n-fetched)
	}
}

// TestFastPathHostedAnswersAsServeHTTP: for hosted repositories on a
// local store with its read cache (pointer-sized files only, as packyard
// serve sets it), the files the cache holds and the larger files (sent
// with sendfile) are answered by the fast path exactly as ServeHTTP
// answers them; small files not cached yet, ranges, conditional requests
// for files with a Last-Modified, missing files and snapshots reach
// ServeHTTP.
func TestFastPathHostedAnswersAsServeHTTP(t *testing.T) {
	e := newEnv(t, envOptions{keys: true, readCache: 32 << 20, readCacheFile: 64 << 10})
	fast, counted := startFast(t, e.api)
	e.createRepo("el")
	rpm := e.mustUpload("el", "fast-1.0-1.noarch.rpm", buildRPM(t, "fast", "1.0", "1", "x"))
	// Random hex compresses to about half: well over the 64 KiB the
	// cache takes.
	raw := make([]byte, 200<<10)
	_, _ = rand.Read(raw)
	bigData := buildRPM(t, "big", "1.0", "1", hex.EncodeToString(raw))
	big := e.mustUpload("el", "big-1.0-1.noarch.rpm", bigData)
	e.createDebRepo("deb")
	e.upload("deb", "fast_1.0_all.deb", buildDebFile(t, "fast", "1.0", "all", "fast path"), e.admin,
		"distribution=stable&component=main").want(t, http.StatusCreated, "deb upload")

	// On a local store the fast path answers from the first GET, reading
	// the small files into the read cache.
	warm := func(p string) {
		t.Helper()
		before := counted.n.Load()
		if resp, _ := getOnce(t, fast, http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		if counted.n.Load() != before+1 {
			t.Fatalf("the fast path did not answer the first GET of %s", p)
		}
	}
	for _, p := range []string{"/el/repodata/repomd.xml", "/el/repodata/repomd.xml.asc", "/deb/dists/stable/InRelease"} {
		warm(p)
	}
	primary := "/el/" + e.repodataHref("el", "primary")
	warm(primary)
	warm("/el/" + rpm.Path)
	// Larger than the cache takes: sent with sendfile.
	before := counted.n.Load()
	if resp, body := getOnce(t, fast, http.MethodGet, "/el/"+big.Path, nil); resp.StatusCode != http.StatusOK || body != string(bigData) {
		t.Fatalf("GET %s: %d, %d bytes (want %d)", big.Path, resp.StatusCode, len(body), len(bigData))
	}
	if counted.n.Load() != before+1 {
		t.Fatal("the fast path did not send the large package")
	}
	if m := string(e.get("/metrics").body); !strings.Contains(m, "packyard_read_cache_misses_total 5\n") {
		t.Errorf("read cache misses: want the 5 small files read once each:\n%s", grepLines(m, "packyard_read_cache"))
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	compareFast(t, e.url, fast, counted, []fastCase{
		{"repomd.xml", http.MethodGet, "/el/repodata/repomd.xml", nil, true},
		{"repomd.xml HEAD", http.MethodHead, "/el/repodata/repomd.xml", nil, true},
		{"repomd.xml.asc", http.MethodGet, "/el/repodata/repomd.xml.asc", nil, true},
		{"InRelease", http.MethodGet, "/deb/dists/stable/InRelease", nil, true},
		// No Last-Modified on a pointer file: the header changes nothing.
		{"InRelease, If-Modified-Since", http.MethodGet, "/deb/dists/stable/InRelease", http.Header{"If-Modified-Since": {future}}, true},
		// A content-addressed index (assembled from parts, held whole)
		// has one: with If-Modified-Since, net/http decides (304).
		{"primary", http.MethodGet, primary, nil, true},
		{"primary, If-Modified-Since", http.MethodGet, primary, http.Header{"If-Modified-Since": {future}}, false},
		{"InRelease, range", http.MethodGet, "/deb/dists/stable/InRelease", http.Header{"Range": {"bytes=0-9"}}, false},
		{"small rpm package, cached", http.MethodGet, "/el/" + rpm.Path, nil, true},
		{"large rpm package, sendfile", http.MethodGet, "/el/" + big.Path, nil, true},
		{"large rpm package HEAD", http.MethodHead, "/el/" + big.Path, nil, true},
		{"large rpm package, If-Modified-Since", http.MethodGet, "/el/" + big.Path, http.Header{"If-Modified-Since": {future}}, false},
		{"large rpm package, range", http.MethodGet, "/el/" + big.Path, http.Header{"Range": {"bytes=100-199"}}, false},
		{"deb package", http.MethodGet, "/deb/pool/main/f/fast/fast_1.0_all.deb", nil, true},
		{"missing", http.MethodGet, "/el/repodata/nope.xml", nil, false},
		{"snapshot", http.MethodGet, "/el/@snap/repodata/repomd.xml", nil, false},
	})
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestFastPathRemoteStore: with a remote store (no files to send), only
// what the read cache holds is answered by the fast path; packages go to
// ServeHTTP, which reads (or redirects to) the store.
func TestFastPathRemoteStore(t *testing.T) {
	var rs *remoteStore
	e := newEnv(t, envOptions{readCache: 1 << 20, wrapBlobs: func(b blob.Store) blob.Store {
		rs = &remoteStore{Store: b}
		return rs
	}})
	fast, counted := startFast(t, e.api)
	e.createRepo("el")
	raw := make([]byte, 400<<10)
	_, _ = rand.Read(raw)
	big := e.mustUpload("el", "big-1.0-1.noarch.rpm", buildRPM(t, "big", "1.0", "1", hex.EncodeToString(raw)))
	// Not cached yet: net/http reads it from the store (and caches it).
	before := counted.n.Load()
	getOnce(t, fast, http.MethodGet, "/el/repodata/repomd.xml", nil)
	if counted.n.Load() != before {
		t.Fatal("the fast path answered a file of a remote store it did not hold")
	}
	opens := rs.opens.Load()
	compareFast(t, e.url, fast, counted, []fastCase{
		{"repomd.xml, cached", http.MethodGet, "/el/repodata/repomd.xml", nil, true},
		{"package over the cache's bound", http.MethodGet, "/el/" + big.Path, nil, false},
	})
	// Only net/http's GET of the package opened the store.
	if n := rs.opens.Load() - opens; n != 2 {
		t.Errorf("the store was opened %d times, want 2 (net/http's two GETs of the package)", n)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
