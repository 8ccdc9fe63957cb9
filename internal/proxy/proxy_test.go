package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
)

// upstream is a test upstream: files by path, a request counter per path,
// and switches to make it fail.
type upstream struct {
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// down answers 503 to everything; cut sends half a body and closes
	// the connection; gate, when set, holds every body until closed.
	down, cut bool
	gate      chan struct{}
	srv       *httptest.Server
	// redirects answers 302 to Location for a path; status answers a
	// status (with no body) for a path; ctype sets a Content-Type;
	// noETag sends no ETag; uris logs every RequestURI as received.
	redirects map[string]string
	status    map[string]int
	ctype     map[string]string
	noETag    bool
	uris      []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{files: map[string][]byte{}, hits: map[string]int{}, redirects: map[string]string{}, status: map[string]int{}, ctype: map[string]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(p string, b []byte) {
	u.mu.Lock()
	u.files[p] = b
	u.mu.Unlock()
}

func (u *upstream) count(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[p]
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	u.mu.Lock()
	u.hits[p]++
	u.uris = append(u.uris, r.RequestURI)
	b, ok := u.files[p]
	down, cut, gate := u.down, u.cut, u.gate
	loc, status, ct, noETag := u.redirects[p], u.status[p], u.ctype[p], u.noETag
	u.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if loc != "" {
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !noETag {
		w.Header().Set("ETag", etag)
	}
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusOK)
	half := len(b) / 2
	_, _ = w.Write(b[:half])
	w.(http.Flusher).Flush()
	if gate != nil {
		<-gate
	}
	if cut {
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(b[half:])
}

type env struct {
	p     *Proxy
	store *sqlite.Store
	blobs blob.Store
	repo  *meta.Repo
	cfg   Config
	srv   *httptest.Server
}

func newEnv(t *testing.T, format string, ups ...*upstream) *env {
	dir := t.TempDir()
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &meta.Repo{Name: "cache", Format: format, Kind: meta.KindProxy, Config: []byte(`{}`)}
	if err := db.CreateRepo(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	e := &env{store: db, blobs: blobs, repo: r}
	for _, u := range ups {
		e.cfg.Upstreams = append(e.cfg.Upstreams, u.srv.URL+"/")
	}
	e.cfg.Timeout = 5 * time.Second
	e.p = New(Options{Blobs: blobs, Meta: db, TempDir: dir})
	t.Cleanup(e.p.Close)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := e.p.Serve(w, r, e.repo, e.cfg, strings.TrimPrefix(r.URL.Path, "/"))
		switch {
		case err == nil:
		case errors.Is(err, ErrBadPath):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case errors.Is(err, ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, ErrGatewayTimeout):
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
		case errors.Is(err, ErrBadGateway):
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) get(t *testing.T, p string, hdr ...string) (int, []byte, http.Header, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/"+p, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCoalescedDownload(t *testing.T) {
	u := newUpstream(t)
	data := randomBytes(t, 3<<20)
	u.set("Packages/big-1.0-1.x86_64.rpm", data)
	u.gate = make(chan struct{})
	e := newEnv(t, meta.FormatRPM, u)

	const clients = 16
	var wg sync.WaitGroup
	bodies := make([][]byte, clients)
	errs := make([]error, clients)
	var results sync.Map
	var started atomic.Int32
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			code, b, h, err := e.get(t, "Packages/big-1.0-1.x86_64.rpm")
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d: %s", code, b)
			}
			bodies[i], errs[i] = b, err
			if h != nil {
				results.Store(i, h.Get(HeaderCache))
			}
		}()
	}
	// Let every client join the flight while the upstream holds the
	// second half back.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.p.mu.Lock()
		var refs int
		for _, fl := range e.p.flights {
			fl.mu.Lock()
			refs = fl.refs
			fl.mu.Unlock()
		}
		e.p.mu.Unlock()
		if refs == clients+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(u.gate)
	wg.Wait()
	for i := range clients {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if !bytes.Equal(bodies[i], data) {
			t.Fatalf("client %d got %d bytes, not the upstream's %d", i, len(bodies[i]), len(data))
		}
	}
	if n := u.count("Packages/big-1.0-1.x86_64.rpm"); n != 1 {
		t.Errorf("upstream requests = %d, want 1", n)
	}
	miss, coalesced := 0, 0
	results.Range(func(_, v any) bool {
		switch v {
		case "miss":
			miss++
		case "coalesced":
			coalesced++
		}
		return true
	})
	if miss != 1 || coalesced != clients-1 {
		t.Errorf("cache results: %d miss, %d coalesced; want 1 and %d", miss, coalesced, clients-1)
	}
	// Now a hit, from the store.
	code, b, h, err := e.get(t, "Packages/big-1.0-1.x86_64.rpm")
	if err != nil || code != 200 || !bytes.Equal(b, data) || h.Get(HeaderCache) != "hit" {
		t.Fatalf("second request: %d %v %s, %d bytes", code, err, h.Get(HeaderCache), len(b))
	}
	if n := u.count("Packages/big-1.0-1.x86_64.rpm"); n != 1 {
		t.Errorf("upstream requests after a hit = %d, want 1", n)
	}
}

func TestFailedDownloadAbortsAndCachesNothing(t *testing.T) {
	u := newUpstream(t)
	data := randomBytes(t, 1<<20)
	u.set("pool/main/f/foo/foo_1.0_amd64.deb", data)
	u.cut = true
	e := newEnv(t, meta.FormatDeb, u)
	code, b, _, err := e.get(t, "pool/main/f/foo/foo_1.0_amd64.deb")
	// An aborted connection, or an error status when the failure came
	// before the first byte went out.
	if err == nil && code == http.StatusOK {
		t.Fatalf("a cut download reached the client as a complete response: %d, %d of %d bytes", code, len(b), len(data))
	}
	if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "pool/main/f/foo/foo_1.0_amd64.deb"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("a failed download was recorded: %v", err)
	}
	if _, err := e.blobs.Stat(t.Context(), blob.Digest(hexSum(data))); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed download left its blob: %v", err)
	}
	u.mu.Lock()
	u.cut = false
	u.mu.Unlock()
	code, b, _, err = e.get(t, "pool/main/f/foo/foo_1.0_amd64.deb")
	if err != nil || code != 200 || !bytes.Equal(b, data) {
		t.Fatalf("after the upstream recovered: %d %v, %d bytes", code, err, len(b))
	}
	if n := u.count("pool/main/f/foo/foo_1.0_amd64.deb"); n != 2 {
		t.Errorf("upstream requests = %d, want 2 (the failed one and the retry)", n)
	}
}

func TestFailoverAndNotFound(t *testing.T) {
	bad, good := newUpstream(t), newUpstream(t)
	bad.down = true
	data := []byte("package bytes")
	good.set("x86_64/foo-1-1-x86_64.pkg.tar.zst", data)
	e := newEnv(t, meta.FormatArch, bad, good)
	code, b, _, err := e.get(t, "x86_64/foo-1-1-x86_64.pkg.tar.zst")
	if err != nil || code != 200 || !bytes.Equal(b, data) {
		t.Fatalf("failover: %d %v %q", code, err, b)
	}
	if bad.count("x86_64/foo-1-1-x86_64.pkg.tar.zst") != 1 {
		t.Errorf("the first upstream was not tried first")
	}
	// Missing everywhere but one upstream down: 502, not 404.
	if code, b, _, _ := e.get(t, "x86_64/nope-1-1-x86_64.pkg.tar.zst"); code != http.StatusBadGateway {
		t.Errorf("missing file with an upstream down: %d %s, want 502", code, b)
	}
	bad.mu.Lock()
	bad.down = false
	bad.mu.Unlock()
	// Past the backoff of the upstream that failed.
	e.p.now = func() time.Time { return time.Now().Add(backoffMax) }
	if code, _, _, _ := e.get(t, "x86_64/nope-1-1-x86_64.pkg.tar.zst"); code != http.StatusNotFound {
		t.Errorf("file no upstream has: %d, want 404", code)
	}
}

func TestDigestMismatchIsRefused(t *testing.T) {
	u := newUpstream(t)
	good := []byte("the real package")
	primary := gz(t, fmt.Sprintf(`<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">
<package type="rpm"><name>foo</name><checksum type="sha256" pkgid="YES">%s</checksum><size package="%d"/><location href="Packages/foo.rpm"/></package></metadata>`, hexSum(good), len(good)))
	repomd := fmt.Sprintf(`<?xml version="1.0"?><repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary"><checksum type="sha256">%s</checksum><location href="repodata/%s-primary.xml.gz"/><size>%d</size></data></repomd>`,
		hexSum(primary), hexSum(primary), len(primary))
	u.set("repodata/repomd.xml", []byte(repomd))
	u.set("repodata/"+hexSum(primary)+"-primary.xml.gz", primary)
	evil := []byte("the evil package")
	u.set("Packages/foo.rpm", evil)
	e := newEnv(t, meta.FormatRPM, u)
	code, b, h, err := e.get(t, "repodata/repomd.xml")
	if err != nil || code != 200 || string(b) != repomd {
		t.Fatalf("repomd.xml: %d %v %s", code, err, b)
	}
	if h.Get(HeaderCache) != "revalidated" {
		t.Errorf("first repomd.xml: %s = %q", HeaderCache, h.Get(HeaderCache))
	}
	// The primary was fetched with its pointer.
	if u.count("repodata/"+hexSum(primary)+"-primary.xml.gz") != 1 {
		t.Fatalf("primary not fetched with repomd.xml")
	}
	if _, b, h, _ := e.get(t, "repodata/"+hexSum(primary)+"-primary.xml.gz"); !bytes.Equal(b, primary) || h.Get(HeaderCache) != "hit" {
		t.Errorf("primary served %d bytes, %s", len(b), h.Get(HeaderCache))
	}
	code, b, _, err = e.get(t, "Packages/foo.rpm")
	if err == nil && code == 200 {
		t.Fatalf("a package whose digest differs from primary.xml's was served: %q", b)
	}
	if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/foo.rpm"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("a mismatching package was recorded: %v", err)
	}
	u.set("Packages/foo.rpm", good)
	if code, b, _, err := e.get(t, "Packages/foo.rpm"); err != nil || code != 200 || !bytes.Equal(b, good) {
		t.Fatalf("good package: %d %v %q", code, err, b)
	}
}

func TestPointerRevalidationAndStale(t *testing.T) {
	u := newUpstream(t)
	release := func(v string, pk []byte) []byte {
		return []byte(fmt.Sprintf("Origin: test\nSuite: stable\nVersion: %s\nSHA256:\n %s %d main/binary-amd64/Packages\n %s 99 main/binary-amd64/Packages.gz\n",
			v, hexSum(pk), len(pk), strings.Repeat("ab", 32)))
	}
	pk1 := []byte("Package: foo\nFilename: pool/foo_1.deb\n\n")
	u.set("dists/stable/Release", release("1", pk1))
	u.set("dists/stable/Release.gpg", []byte("sig1"))
	u.set("dists/stable/main/binary-amd64/Packages", pk1)
	e := newEnv(t, meta.FormatDeb, u)
	e.cfg.MaxAge = time.Hour
	if code, b, _, _ := e.get(t, "dists/stable/InRelease"); code != 404 {
		t.Fatalf("InRelease the upstream lacks: %d %s", code, b)
	}
	code, b, _, _ := e.get(t, "dists/stable/Release")
	if code != 200 || !bytes.Equal(b, release("1", pk1)) {
		t.Fatalf("Release: %d %s", code, b)
	}
	// Fetched with the pointer (the Packages.gz it lists is missing
	// upstream, which Release files may do).
	if u.count("dists/stable/main/binary-amd64/Packages") != 1 || u.count("dists/stable/Release.gpg") != 1 {
		t.Fatalf("the group was not fetched together: %v", u.hits)
	}
	// Within max_age: no upstream request.
	before := u.count("dists/stable/Release")
	if _, _, h, _ := e.get(t, "dists/stable/Release.gpg"); h.Get(HeaderCache) != "hit" {
		t.Errorf("Release.gpg within max_age: %q", h.Get(HeaderCache))
	}
	if u.count("dists/stable/Release") != before {
		t.Errorf("revalidated within max_age")
	}
	// A new version upstream after max_age.
	pk2 := []byte("Package: foo\nFilename: pool/foo_2.deb\n\n")
	u.set("dists/stable/Release", release("2", pk2))
	u.set("dists/stable/main/binary-amd64/Packages", pk2)
	e.cfg.MaxAge = time.Nanosecond
	code, b, _, _ = e.get(t, "dists/stable/Release")
	if code != 200 || !bytes.Equal(b, release("2", pk2)) {
		t.Fatalf("Release after a change: %d %s", code, b)
	}
	e.cfg.MaxAge = time.Hour
	if _, b, _, _ := e.get(t, "dists/stable/main/binary-amd64/Packages"); !bytes.Equal(b, pk2) {
		t.Errorf("Packages after the change: %q", b)
	}
	// Unchanged: a conditional GET answered 304.
	e.cfg.MaxAge = time.Nanosecond
	if _, b, h, _ := e.get(t, "dists/stable/Release"); !bytes.Equal(b, release("2", pk2)) || h.Get(HeaderCache) != "revalidated" {
		t.Errorf("revalidated Release: %q %s", b, h.Get(HeaderCache))
	}
	// Upstream down: stale copies, and 502 for what is not cached.
	u.mu.Lock()
	u.down = true
	u.mu.Unlock()
	code, b, h, _ := e.get(t, "dists/stable/Release")
	if code != 200 || !bytes.Equal(b, release("2", pk2)) || h.Get(HeaderCache) != "stale" {
		t.Errorf("Release with the upstream down: %d %s %q", code, b, h.Get(HeaderCache))
	}
	if code, _, _, _ := e.get(t, "pool/foo_3.deb"); code != http.StatusBadGateway {
		t.Errorf("uncached file with the upstream down: %d, want 502", code)
	}
}

func TestCacheOnly(t *testing.T) {
	u := newUpstream(t)
	u.set("pool/a.deb", []byte("aaa"))
	e := newEnv(t, meta.FormatDeb, u)
	if code, _, _, _ := e.get(t, "pool/a.deb", HeaderCacheOnly, "1"); code != 404 {
		t.Fatalf("cache-only request for an uncached file: %d, want 404", code)
	}
	if u.count("pool/a.deb") != 0 {
		t.Fatalf("a cache-only request reached the upstream")
	}
	if code, _, _, _ := e.get(t, "pool/a.deb"); code != 200 {
		t.Fatal(code)
	}
	if code, b, _, _ := e.get(t, "pool/a.deb", HeaderCacheOnly, "1"); code != 200 || string(b) != "aaa" {
		t.Fatalf("cache-only request for a cached file: %d %q", code, b)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		format, path string
		kind         kind
		group        string
	}{
		{meta.FormatRPM, "repodata/repomd.xml", kindPointer, "repodata/repomd.xml"},
		{meta.FormatRPM, "repodata/repomd.xml.asc", kindPointer, "repodata/repomd.xml"},
		{meta.FormatRPM, "os/repodata/repomd.xml.key", kindPointer, "os/repodata/repomd.xml"},
		{meta.FormatRPM, "repodata/" + strings.Repeat("a", 64) + "-primary.xml.gz", kindImmutable, ""},
		{meta.FormatRPM, "repodata/primary.xml.gz", kindIndex, ""},
		{meta.FormatRPM, "Packages/f/foo.rpm", kindImmutable, ""},
		{meta.FormatDeb, "dists/bookworm/InRelease", kindPointer, "dists/bookworm/InRelease"},
		{meta.FormatDeb, "dists/bookworm/Release.gpg", kindPointer, "dists/bookworm/InRelease"},
		{meta.FormatDeb, "dists/bookworm/main/binary-amd64/Release", kindIndex, ""},
		{meta.FormatDeb, "dists/bookworm/main/binary-amd64/Packages.xz", kindIndex, ""},
		{meta.FormatDeb, "dists/bookworm/main/binary-amd64/by-hash/SHA256/" + strings.Repeat("b", 64), kindImmutable, ""},
		{meta.FormatDeb, "pool/main/f/foo/foo_1_amd64.deb", kindImmutable, ""},
		{meta.FormatArch, "x86_64/core.db", kindPointer, "x86_64/core.db"},
		{meta.FormatArch, "x86_64/core.db.sig", kindPointer, "x86_64/core.db"},
		{meta.FormatArch, "x86_64/core.files.tar.gz", kindPointer, "x86_64/core.files.tar.gz"},
		{meta.FormatArch, "x86_64/foo-1-1-x86_64.pkg.tar.zst", kindImmutable, ""},
		{meta.FormatArch, "x86_64/foo-1-1-x86_64.pkg.tar.zst.sig", kindImmutable, ""},
	} {
		c := classify(tc.format, tc.path)
		if c.kind != tc.kind || c.group() != tc.group {
			t.Errorf("classify(%s, %s) = kind %d group %q; want %d %q", tc.format, tc.path, c.kind, c.group(), tc.kind, tc.group)
		}
	}
}

func TestCutMidStreamAbortsEveryClient(t *testing.T) {
	u := newUpstream(t)
	data := randomBytes(t, 2<<20)
	u.set("Packages/cut.rpm", data)
	u.gate = make(chan struct{})
	u.cut = true
	e := newEnv(t, meta.FormatRPM, u)
	const clients = 4
	type res struct {
		code int
		n    int
		err  error
	}
	out := make(chan res, clients)
	for range clients {
		go func() {
			code, b, _, err := e.get(t, "Packages/cut.rpm")
			out <- res{code, len(b), err}
		}()
	}
	// Every client has its headers and the first half before the cut.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.p.mu.Lock()
		refs := 0
		for _, fl := range e.p.flights {
			fl.mu.Lock()
			refs = fl.refs
			fl.mu.Unlock()
		}
		e.p.mu.Unlock()
		if refs == clients+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the first half reach the clients
	close(u.gate)
	for range clients {
		r := <-out
		if r.err == nil && r.code == http.StatusOK {
			t.Fatalf("a client took a cut download as complete: %d bytes of %d", r.n, len(data))
		}
	}
	if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, "Packages/cut.rpm"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("a cut download was recorded: %v", err)
	}
}

// TestPointerMembers: a pointer group's members are named in order, the
// main one first, whichever member was asked for.
func TestPointerMembers(t *testing.T) {
	for _, tc := range []struct {
		format, path string
		want         []string
	}{
		{meta.FormatDeb, "dists/stable/Release.gpg", []string{"dists/stable/InRelease", "dists/stable/Release", "dists/stable/Release.gpg"}},
		{meta.FormatDeb, "dists/stable/InRelease", []string{"dists/stable/InRelease", "dists/stable/Release", "dists/stable/Release.gpg"}},
		{meta.FormatRPM, "os/repodata/repomd.xml.asc", []string{"os/repodata/repomd.xml", "os/repodata/repomd.xml.asc", "os/repodata/repomd.xml.key"}},
		{meta.FormatArch, "core/os/x86_64/core.db.sig", []string{"core/os/x86_64/core.db", "core/os/x86_64/core.db.sig"}},
		{meta.FormatArch, "x86_64/extra.files.tar.gz", []string{"x86_64/extra.files.tar.gz", "x86_64/extra.files.tar.gz.sig"}},
	} {
		c := classify(tc.format, tc.path)
		var got []string
		for i := range c.count() {
			got = append(got, c.member(i))
		}
		if c.kind != kindPointer || fmt.Sprint(got) != fmt.Sprint(tc.want) || c.group() != tc.want[0] || c.member(c.self) != tc.path {
			t.Errorf("classify(%s, %s): kind %d, members %q (self %d), want %q", tc.format, tc.path, c.kind, got, c.self, tc.want)
		}
	}
}

// TestContentLengthValues: the interned Content-Length values are right,
// sizes that share a slot included.
func TestContentLengthValues(t *testing.T) {
	var hv headerValues
	for _, n := range []int64{0, 7, 2814, 2814 + 1024, 2814, 20 << 20, 1<<40 + 3} {
		if got := hv.length(n); len(got) != 1 || got[0] != strconv.FormatInt(n, 10) {
			t.Errorf("length(%d) = %q", n, got)
		}
	}
}
