package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/rpm"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
	"github.com/packyard/packyard/internal/httpapi"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/repo"
	"github.com/packyard/packyard/internal/sign"
)

// testTimeout bounds every wait of a test: a stream that never delivers, a
// package that never becomes visible.
const testTimeout = 10 * time.Second

// env is the real server stack (fsblob in a temporary directory, SQLite,
// repo.Service with the rpm format, auth, httpapi) behind an httptest
// server on 127.0.0.1.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	url   string
	data  string
	blobs *fsblob.Store
	db    *sqlite.Store
	svc   *repo.Service
	api   *httpapi.Server
	// admin is the secret of the first admin token, as EnsureAdmin wrote it.
	admin string
	// http does not follow redirects, so tests see them.
	http *http.Client
	// keys is the server's keyring (nil unless envOptions.keys).
	keys *sign.Keyring
}

type envOptions struct {
	// maxUpload is the server's max_upload_size (default 64 MiB; -1: no
	// limit set, neither in the service nor in the API).
	maxUpload int64
	// baseURL is httpapi.Options.BaseURL.
	baseURL string
	// keys gives the server a keyring in <data>/keys holding a copy of
	// internal/sign/testdata/seed-key.asc as "default", its default key:
	// new repositories are then signed.
	keys bool
	// wrapBlobs, if set, wraps the blob store the service uses.
	wrapBlobs func(blob.Store) blob.Store
	// readCache and readCacheFile are httpapi.Options.ReadCacheSize and
	// ReadCacheMaxFile.
	readCache, readCacheFile int64
}

// defaultKeyName is the server's default key with envOptions.keys.
const defaultKeyName = "default"

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	switch o.maxUpload {
	case 0:
		o.maxUpload = 64 << 20
	case -1:
		o.maxUpload = 0
	}
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
	tokPath, created, err := auth.EnsureAdmin(ctx, db, dir, "")
	if err != nil || !created {
		t.Fatalf("EnsureAdmin: created=%v err=%v", created, err)
	}
	secret, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := httpapi.NewMetrics()
	ro := repo.Options{MaxUploadSize: o.maxUpload, GenerationGrace: time.Hour, Metrics: metrics}
	var keys *sign.Keyring
	var defaultKey string
	if o.keys {
		keys, defaultKey = seedKeyring(t, filepath.Join(dir, "keys")), defaultKeyName
		// Only a real keyring: a nil *sign.Keyring in the KeySource
		// interface would not compare equal to nil.
		ro.Keys, ro.DefaultKey = keys, defaultKey
	}
	var store blob.Store = blobs
	if o.wrapBlobs != nil {
		store = o.wrapBlobs(blobs)
	}
	svc := repo.New(store, db, []format.Format{rpm.New(), deb.New(), arch.New()}, log, ro)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(svc, auth.New(db), metrics, log, httpapi.Options{
		MaxUploadSize: o.maxUpload, BodyIdleTimeout: testTimeout, BaseURL: o.baseURL,
		Keys: keys, DefaultKey: defaultKey, ReadCacheSize: o.readCache, ReadCacheMaxFile: o.readCacheFile,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
		_ = db.Close()
		_ = blobs.Close()
	})
	return &env{
		t: t, srv: srv, url: srv.URL, data: dir, blobs: blobs, db: db, svc: svc, api: api,
		admin: strings.TrimSpace(string(secret)), keys: keys,
		http: &http.Client{
			Timeout:       testTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// seedKeyring opens a keyring in dir holding a copy of the fixed test key
// as defaultKeyName, the way a server finds its key directory.
func seedKeyring(t *testing.T, dir string) *sign.Keyring {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sign", "testdata", "seed-key.asc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, defaultKeyName+".asc"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := sign.OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, bytes.TrimSpace(r.body))
}

// request builds a request to the test server; token "" sends none.
func (e *env) request(method, path, token string, body io.Reader) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// send runs req and reads the whole answer.
func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// call sends one request with an optional bearer token and body.
func (e *env) call(method, path, token string, body []byte) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return e.send(e.request(method, path, token, rd))
}

// get is an anonymous GET.
func (e *env) get(path string) response {
	e.t.Helper()
	return e.call(http.MethodGet, path, "", nil)
}

// want fails the test unless r has the status.
func (r response) want(t *testing.T, status int, what string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: got %v, want HTTP %d", what, r, status)
	}
	return r
}

// decodeJSON decodes r's body into a T.
func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %v: %v", v, r, err)
	}
	return v
}

// apiErr checks that r is a JSON error of the documented shape
// {"error": "...", "code": "..."} and returns its message and code.
func (r response) apiErr(t *testing.T) (msg, code string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer %v has Content-Type %q, want application/json", r, ct)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error answer %v is not a JSON object: %v", r, err)
	}
	for _, k := range []string{"error", "code"} {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil || s == "" {
			t.Fatalf("error answer %v: field %q is not a non-empty string", r, k)
		}
	}
	_ = json.Unmarshal(m["error"], &msg)
	_ = json.Unmarshal(m["code"], &code)
	return msg, code
}

// repoInfo is the API form of a repository, as a client reads it.
type repoInfo struct {
	Name              string `json:"name"`
	Format            string `json:"format"`
	Kind              string `json:"kind"`
	CurrentGeneration int64  `json:"current_generation"`
	URL               string `json:"url"`
}

// pkgInfo is the API form of a package (and of an upload answer).
type pkgInfo struct {
	ID         int64  `json:"id"`
	Repo       string `json:"repo"`
	Name       string `json:"name"`
	Epoch      string `json:"epoch"`
	Version    string `json:"version"`
	Release    string `json:"release"`
	Arch       string `json:"arch"`
	Path       string `json:"path"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	UploadedBy string `json:"uploaded_by"`
	Created    bool   `json:"created"`
	Generation int64  `json:"generation"`
	URL        string `json:"url"`
}

func (e *env) createRepo(name string) repoInfo {
	e.t.Helper()
	r := e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(`{"name":"`+name+`","format":"rpm"}`))
	r.want(e.t, http.StatusCreated, "create repository "+name)
	return decodeJSON[repoInfo](e.t, r)
}

// upload PUTs data as a package file; query is appended as is ("" or
// "wait=false").
func (e *env) upload(repoName, file string, data []byte, token, query string) response {
	e.t.Helper()
	p := "/api/v1/repos/" + repoName + "/packages/" + file
	if query != "" {
		p += "?" + query
	}
	return e.call(http.MethodPut, p, token, data)
}

// mustUpload uploads a new package and returns the answer.
func (e *env) mustUpload(repoName, file string, data []byte) pkgInfo {
	e.t.Helper()
	r := e.upload(repoName, file, data, e.admin, "")
	r.want(e.t, http.StatusCreated, "upload "+file)
	return decodeJSON[pkgInfo](e.t, r)
}

func (e *env) packages(repoName string) []pkgInfo {
	e.t.Helper()
	r := e.get("/api/v1/repos/"+repoName+"/packages").want(e.t, http.StatusOK, "list packages")
	return decodeJSON[[]pkgInfo](e.t, r)
}

// token creates a token through the API and returns its secret.
func (e *env) token(name, scope string, repos ...string) string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scope": scope, "repos": repos})
	r := e.call(http.MethodPost, "/api/v1/tokens", e.admin, body).want(e.t, http.StatusCreated, "create token "+name)
	tok := decodeJSON[struct {
		Token string `json:"token"`
	}](e.t, r)
	if tok.Token == "" {
		e.t.Fatalf("token %s created without its secret: %v", name, r)
	}
	return tok.Token
}

// blobCount counts the committed blobs by walking the store.
func (e *env) blobCount() int {
	e.t.Helper()
	n := 0
	if err := e.blobs.Walk(context.Background(), func(blob.Info) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// tempCount returns the number of uploads the blob store has in progress
// or left behind.
func (e *env) tempCount() int {
	e.t.Helper()
	n, err := e.blobs.TempCount()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitUntil polls cond until it holds, failing the test after testTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", testTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var buildTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// rpmSpec is a small valid package whose content depends on payload.
func rpmSpec(name, version, release, payload string) rpmtest.Spec {
	return rpmtest.Spec{
		Name: name, Version: version, Release: release, Arch: "x86_64",
		Summary: "packyard test package " + name, Description: "A package built for the HTTP API tests.",
		License: "MIT", URL: "https://example.com/" + name, BuildHost: "test.example.com", BuildTime: buildTime,
		Files: []rpmtest.File{
			{Path: "/usr/share/" + name + "/data.txt", Body: []byte(payload), Mode: 0o644},
		},
	}
}

// buildRPM builds a package file.
func buildRPM(t *testing.T, name, version, release, payload string) []byte {
	t.Helper()
	b, err := rpmtest.Build(rpmSpec(name, version, release, payload))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// repomd is the part of repodata/repomd.xml the tests read.
type repomd struct {
	Data []struct {
		Type     string `xml:"type,attr"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
	} `xml:"data"`
}

// repodataHref returns the location of one metadata type of a repository's
// current generation.
func (e *env) repodataHref(repoName, typ string) string {
	e.t.Helper()
	r := e.get("/"+repoName+"/repodata/repomd.xml").want(e.t, http.StatusOK, "repomd.xml")
	var md repomd
	if err := xml.Unmarshal(r.body, &md); err != nil {
		e.t.Fatalf("parse repomd.xml: %v\n%s", err, r.body)
	}
	for _, d := range md.Data {
		if d.Type == typ {
			return d.Location.Href
		}
	}
	e.t.Fatalf("repomd.xml names no %s data:\n%s", typ, r.body)
	return ""
}

// primaryXML returns the decoded primary metadata of a repository's current
// generation.
func (e *env) primaryXML(repoName string) string {
	e.t.Helper()
	href := e.repodataHref(repoName, "primary")
	r := e.get("/"+repoName+"/"+href).want(e.t, http.StatusOK, href)
	if !strings.HasSuffix(href, ".gz") {
		e.t.Fatalf("primary metadata %s is not gzip; extend the test", href)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		e.t.Fatalf("decompress %s: %v", href, err)
	}
	return string(raw)
}
