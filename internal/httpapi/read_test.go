package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const immutable = "public, max-age=31536000, immutable"

func TestReadPackage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "served", "1", "1", strings.Repeat("payload ", 100))
	p := e.mustUpload("r", "served.rpm", data)
	path := "/r/" + p.Path

	full := e.get(path).want(t, http.StatusOK, "GET package")
	if !bytes.Equal(full.body, data) {
		t.Fatalf("GET returned %d bytes that differ from the %d uploaded", len(full.body), len(data))
	}
	h := full.header
	etag := `"` + p.SHA256 + `"`
	checks := map[string]string{
		"Content-Type":   "application/x-rpm",
		"ETag":           etag,
		"Cache-Control":  immutable,
		"Accept-Ranges":  "bytes",
		"Content-Length": strconv.Itoa(len(data)),
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
	}

	t.Run("range", func(t *testing.T) {
		req := e.request(http.MethodGet, path, "", nil)
		req.Header.Set("Range", "bytes=10-19")
		r := e.send(req).want(t, http.StatusPartialContent, "Range")
		if !bytes.Equal(r.body, data[10:20]) {
			t.Errorf("range body %q, want %q", r.body, data[10:20])
		}
		if cr, want := r.header.Get("Content-Range"), fmt.Sprintf("bytes 10-19/%d", len(data)); cr != want {
			t.Errorf("Content-Range = %q, want %q", cr, want)
		}
		req = e.request(http.MethodGet, path, "", nil)
		req.Header.Set("Range", "bytes=-8")
		r = e.send(req).want(t, http.StatusPartialContent, "suffix Range")
		if !bytes.Equal(r.body, data[len(data)-8:]) {
			t.Errorf("suffix range body %q, want %q", r.body, data[len(data)-8:])
		}
		req = e.request(http.MethodGet, path, "", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(data)+10))
		e.send(req).want(t, http.StatusRequestedRangeNotSatisfiable, "Range past the end")
	})
	t.Run("head", func(t *testing.T) {
		r := e.call(http.MethodHead, path, "", nil).want(t, http.StatusOK, "HEAD")
		if len(r.body) != 0 {
			t.Errorf("HEAD returned a body of %d bytes", len(r.body))
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(data)) {
			t.Errorf("HEAD Content-Length = %q, want %d", cl, len(data))
		}
		if r.header.Get("ETag") != etag {
			t.Errorf("HEAD ETag = %q, want %q", r.header.Get("ETag"), etag)
		}
	})
	t.Run("if-none-match", func(t *testing.T) {
		req := e.request(http.MethodGet, path, "", nil)
		req.Header.Set("If-None-Match", etag)
		r := e.send(req).want(t, http.StatusNotModified, "If-None-Match with the ETag")
		if len(r.body) != 0 {
			t.Errorf("304 with a body")
		}
		req = e.request(http.MethodGet, path, "", nil)
		req.Header.Set("If-None-Match", `"0000"`)
		e.send(req).want(t, http.StatusOK, "If-None-Match with another ETag")
	})
	t.Run("if-modified-since", func(t *testing.T) {
		req := e.request(http.MethodGet, path, "", nil)
		req.Header.Set("If-Modified-Since", lm.Format(http.TimeFormat))
		e.send(req).want(t, http.StatusNotModified, "If-Modified-Since Last-Modified")
		req = e.request(http.MethodGet, path, "", nil)
		req.Header.Set("If-Modified-Since", lm.Add(-time.Hour).Format(http.TimeFormat))
		e.send(req).want(t, http.StatusOK, "If-Modified-Since an hour earlier")
	})
}

func TestReadRepodata(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))

	md := e.get("/r/repodata/repomd.xml").want(t, http.StatusOK, "repomd.xml")
	if cc := md.header.Get("Cache-Control"); cc == immutable || !strings.Contains(cc, "max-age=") {
		t.Errorf("repomd.xml Cache-Control = %q, want a short max-age", cc)
	} else if age := maxAge(cc); age <= 0 || age > 300 {
		t.Errorf("repomd.xml Cache-Control = %q, want a max-age of at most a few minutes", cc)
	}
	if ct := md.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
		t.Errorf("repomd.xml Content-Type = %q, want XML", ct)
	}
	if md.header.Get("ETag") == "" {
		t.Errorf("repomd.xml has no ETag")
	}
	req := e.request(http.MethodGet, "/r/repodata/repomd.xml", "", nil)
	req.Header.Set("If-None-Match", md.header.Get("ETag"))
	e.send(req).want(t, http.StatusNotModified, "repomd.xml If-None-Match")

	for _, typ := range []string{"primary", "filelists", "other"} {
		href := e.repodataHref("r", typ)
		r := e.get("/r/"+href).want(t, http.StatusOK, href)
		if cc := r.header.Get("Cache-Control"); cc != immutable {
			t.Errorf("%s Cache-Control = %q, want %q (its name holds its digest)", href, cc, immutable)
		}
		if want := `"` + sha256Hex(r.body) + `"`; r.header.Get("ETag") != want {
			t.Errorf("%s ETag = %q, want the digest of its bytes %s", href, r.header.Get("ETag"), want)
		}
		if !strings.Contains(href, sha256Hex(r.body)) {
			t.Errorf("%s: name does not hold the digest %s of its bytes", href, sha256Hex(r.body))
		}
		if ct := r.header.Get("Content-Type"); ct == "" || ct == "text/plain; charset=utf-8" {
			t.Errorf("%s Content-Type = %q", href, ct)
		}
	}
}

func maxAge(cc string) int {
	for _, part := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func TestReadListings(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	p := e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))

	root := e.get("/r/").want(t, http.StatusOK, "listing of /r/")
	if ct := root.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("listing Content-Type = %q", ct)
	}
	first, _, inDir := strings.Cut(p.Path, "/")
	if inDir {
		first += "/"
	}
	for _, want := range []string{`href="repodata/"`, `href="` + first + `"`, `href="r.repo"`, "<html"} {
		if !strings.Contains(string(root.body), want) {
			t.Errorf("listing of /r/ lacks %s:\n%s", want, root.body)
		}
	}
	rd := e.get("/r/repodata/").want(t, http.StatusOK, "listing of /r/repodata/")
	for _, want := range []string{`href="repomd.xml"`, `href="` + strings.TrimPrefix(e.repodataHref("r", "primary"), "repodata/") + `"`, `href="../"`} {
		if !strings.Contains(string(rd.body), want) {
			t.Errorf("listing of /r/repodata/ lacks %s:\n%s", want, rd.body)
		}
	}

	redirects := map[string]string{"/r": "/r/", "/r/repodata": "/r/repodata/"}
	for from, to := range redirects {
		r := e.get(from)
		if r.status != http.StatusMovedPermanently && r.status != http.StatusFound {
			t.Errorf("GET %s: %v, want a redirect to %s", from, r, to)
			continue
		}
		if loc := r.header.Get("Location"); loc != to {
			t.Errorf("GET %s redirects to %q, want %q", from, loc, to)
		}
	}

	index := e.get("/").want(t, http.StatusOK, "index")
	if !strings.Contains(string(index.body), `href="r/"`) {
		t.Errorf("index does not link r/:\n%s", index.body)
	}
}

func TestReadNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	for _, p := range []string{"/r/missing.rpm", "/r/repodata/nothing.xml.gz", "/r/no/such/dir/", "/nope/", "/nope", "/nope/repodata/repomd.xml", "/api/v1/repos/nope"} {
		r := e.get(p).want(t, http.StatusNotFound, "GET "+p)
		if _, code := r.apiErr(t); code != "not_found" {
			t.Errorf("GET %s: code %q, want not_found", p, code)
		}
	}
}

func TestClientConfig(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("el9")
	r := e.get("/el9/el9.repo").want(t, http.StatusOK, "el9.repo")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	body := string(r.body)
	for _, want := range []string{"[el9]\n", "\nbaseurl=" + e.url + "/el9/\n", "\nenabled=1\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("el9.repo lacks %q:\n%s", want, body)
		}
	}
	e.get("/el9/other.repo").want(t, http.StatusNotFound, "a .repo file of another name")

	// Behind a TLS proxy the base URL follows X-Forwarded-Proto.
	req := e.request(http.MethodGet, "/el9/el9.repo", "", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	r = e.send(req).want(t, http.StatusOK, "el9.repo behind a proxy")
	if !strings.Contains(string(r.body), "baseurl=https://") {
		t.Errorf("el9.repo behind a TLS proxy:\n%s", r.body)
	}

	// A configured public URL wins.
	e2 := newEnv(t, envOptions{baseURL: "https://pkgs.example.com"})
	e2.createRepo("el9")
	r = e2.get("/el9/el9.repo").want(t, http.StatusOK, "el9.repo with a base URL")
	if !strings.Contains(string(r.body), "\nbaseurl=https://pkgs.example.com/el9/\n") {
		t.Errorf("el9.repo with base URL https://pkgs.example.com:\n%s", r.body)
	}
}

func TestRepoCreateValidation(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"reserved api", `{"name":"api","format":"rpm"}`, 400, "invalid_repository"},
		{"reserved dav", `{"name":"dav","format":"rpm"}`, 400, "invalid_repository"},
		{"reserved metrics", `{"name":"metrics","format":"rpm"}`, 400, "invalid_repository"},
		{"reserved healthz", `{"name":"healthz","format":"rpm"}`, 400, "invalid_repository"},
		{"reserved readyz", `{"name":"readyz","format":"rpm"}`, 400, "invalid_repository"},
		{"reserved ui", `{"name":"ui","format":"rpm"}`, 400, "invalid_repository"},
		{"empty name", `{"name":"","format":"rpm"}`, 400, "invalid_repository"},
		{"upper case", `{"name":"EL9","format":"rpm"}`, 400, "invalid_repository"},
		{"slash", `{"name":"a/b","format":"rpm"}`, 400, "invalid_repository"},
		{"dot dot", `{"name":"..","format":"rpm"}`, 400, "invalid_repository"},
		{"leading dash", `{"name":"-x","format":"rpm"}`, 400, "invalid_repository"},
		{"space", `{"name":"a b","format":"rpm"}`, 400, "invalid_repository"},
		{"too long", `{"name":"` + strings.Repeat("a", 64) + `","format":"rpm"}`, 400, "invalid_repository"},
		{"unknown format", `{"name":"x","format":"msi"}`, 400, "invalid_repository"},
		{"no format", `{"name":"x"}`, 400, "invalid_repository"},
		{"unknown kind", `{"name":"x","format":"rpm","kind":"weird"}`, 400, "invalid_repository"},
		{"not json", `{"name":`, 400, "bad_request"},
		{"array", `[]`, 400, "bad_request"},
		{"ok", `{"name":"el9.x86_64-updates","format":"rpm"}`, 201, ""},
		{"duplicate", `{"name":"el9.x86_64-updates","format":"rpm"}`, 409, "exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(tc.body)).want(t, tc.status, tc.body)
			if tc.code == "" {
				return
			}
			if _, code := r.apiErr(t); code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
		})
	}
	repos := decodeJSON[[]repoInfo](t, e.get("/api/v1/repos").want(t, http.StatusOK, "list"))
	if len(repos) != 1 || repos[0].Name != "el9.x86_64-updates" || repos[0].Kind != "hosted" || repos[0].CurrentGeneration < 1 {
		t.Errorf("repositories after the validation cases: %+v", repos)
	}
}

func TestRepoShowPatchDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	created := e.createRepo("r")
	if created.URL != e.url+"/r/" || created.CurrentGeneration < 1 || created.Format != "rpm" || created.Kind != "hosted" {
		t.Errorf("created = %+v", created)
	}
	// A new repository is usable at once: its index exists.
	e.get("/r/repodata/repomd.xml").want(t, http.StatusOK, "repomd.xml of an empty repository")

	r := e.call(http.MethodPatch, "/api/v1/repos/r", e.admin, []byte(`{"description":"test"}`)).want(t, http.StatusOK, "patch")
	if !strings.Contains(string(r.body), `"description": "test"`) {
		t.Errorf("patched repository: %s", r.body)
	}
	e.call(http.MethodPatch, "/api/v1/repos/r", e.admin, []byte(`{"format":"deb"}`)).want(t, http.StatusBadRequest, "patch format").apiErr(t)

	gens := decodeJSON[[]struct {
		Number  int64 `json:"number"`
		Current bool  `json:"current"`
	}](t, e.get("/api/v1/repos/r/generations").want(t, http.StatusOK, "generations"))
	if len(gens) == 0 || !gens[0].Current {
		t.Errorf("generations = %+v", gens)
	}

	e.call(http.MethodDelete, "/api/v1/repos/r", e.admin, nil).want(t, http.StatusNoContent, "delete")
	e.call(http.MethodDelete, "/api/v1/repos/r", e.admin, nil).want(t, http.StatusNotFound, "delete again").apiErr(t)
	e.get("/r/repodata/repomd.xml").want(t, http.StatusNotFound, "repomd.xml of a deleted repository")
	// The name can be used again.
	e.createRepo("r")
}

func TestHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	if r := e.get("/healthz").want(t, http.StatusOK, "healthz"); strings.TrimSpace(string(r.body)) != "ok" {
		t.Errorf("healthz body %q", r.body)
	}
	e.get("/readyz").want(t, http.StatusOK, "readyz")
}
