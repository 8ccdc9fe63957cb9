// Package client is the Go client of packyard's HTTP API; the CLI and the
// edge agent use nothing else.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one packyard server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at base (e.g. http://localhost:8080)
// authenticating with token (may be empty for public reads).
func New(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: hc}
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"error"`
	// Existing is the package already there, on 409.
	Existing *Package `json:"existing"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Repo is a repository.
type Repo struct {
	Name              string          `json:"name"`
	Format            string          `json:"format"`
	Kind              string          `json:"kind"`
	Config            json.RawMessage `json:"config,omitempty"`
	CurrentGeneration int64           `json:"current_generation"`
	CreatedAt         time.Time       `json:"created_at"`
	URL               string          `json:"url,omitempty"`
	Signing           []SigningKey    `json:"signing"`
}

// SigningKey names a key that signs a repository.
type SigningKey struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

// Key is a signing key of the server (public information only).
type Key struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Algorithm   string    `json:"algorithm,omitempty"`
	UserIDs     []string  `json:"user_ids,omitempty"`
	Created     time.Time `json:"created"`
	External    bool      `json:"external,omitempty"`
	Default     bool      `json:"default,omitempty"`
	Repos       []string  `json:"repos"`
}

// Package is a package record.
type Package struct {
	ID         int64     `json:"id"`
	Repo       string    `json:"repo"`
	Name       string    `json:"name"`
	Epoch      string    `json:"epoch,omitempty"`
	Version    string    `json:"version"`
	Release    string    `json:"release,omitempty"`
	Arch       string    `json:"arch"`
	Scope      string    `json:"scope,omitempty"`
	Path       string    `json:"path"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Summary    string    `json:"summary,omitempty"`
	UploadedBy string    `json:"uploaded_by,omitempty"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// UploadResult answers an upload.
type UploadResult struct {
	Package
	Created    bool   `json:"created"`
	Generation int64  `json:"generation"`
	URL        string `json:"url"`
}

// Token is an API token; Token (the secret) is set only on creation.
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	Repos     []string   `json:"repos,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	Token     string     `json:"token,omitempty"`
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, out any) error {
	return c.doHeader(ctx, method, path, nil, body, size, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, hdr http.Header, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil && method != http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errorOf(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func jsonBody(v any) (io.Reader, int64) {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b), int64(len(b))
}

// CreateRepo creates a repository; extra fields become its configuration.
func (c *Client) CreateRepo(ctx context.Context, name, format, kind string, extra map[string]any) (*Repo, error) {
	doc := map[string]any{}
	for k, v := range extra {
		doc[k] = v
	}
	doc["name"], doc["format"], doc["kind"] = name, format, kind
	b, n := jsonBody(doc)
	var r Repo
	return &r, c.do(ctx, http.MethodPost, "/api/v1/repos", b, n, &r)
}

// ListRepos lists repositories.
func (c *Client) ListRepos(ctx context.Context) ([]Repo, error) {
	var r []Repo
	return r, c.do(ctx, http.MethodGet, "/api/v1/repos", nil, -1, &r)
}

// GetRepo shows one repository.
func (c *Client) GetRepo(ctx context.Context, name string) (*Repo, error) {
	var r Repo
	return &r, c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(name), nil, -1, &r)
}

// DeleteRepo deletes a repository.
func (c *Client) DeleteRepo(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/repos/"+url.PathEscape(name), nil, -1, nil)
}

// ListPackages lists (and searches, with q) a repository's packages.
func (c *Client) ListPackages(ctx context.Context, repo, q string) ([]Package, error) {
	var p []Package
	path := "/api/v1/repos/" + url.PathEscape(repo) + "/packages"
	if q != "" {
		path += "?q=" + url.QueryEscape(q)
	}
	return p, c.do(ctx, http.MethodGet, path, nil, -1, &p)
}

// Upload streams one package file. params carries format options
// (distribution, component); wait=false returns once the upload is durable.
func (c *Client) Upload(ctx context.Context, repo, filename string, body io.Reader, size int64, params map[string]string, wait bool) (*UploadResult, error) {
	q := url.Values{}
	hdr := http.Header{}
	for k, v := range params {
		if k == "signature" {
			// A pacman package's detached signature, base64: a header,
			// not the query.
			hdr.Set(SignatureHeader, v)
			continue
		}
		q.Set(k, v)
	}
	if !wait {
		q.Set("wait", "false")
	}
	path := "/api/v1/repos/" + url.PathEscape(repo) + "/packages/" + url.PathEscape(filename)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var r UploadResult
	return &r, c.doHeader(ctx, http.MethodPut, path, hdr, body, size, &r)
}

// SignatureHeader carries a package's detached signature with an upload.
const SignatureHeader = "X-Packyard-Signature"

// CreateToken creates a token and returns it with its secret.
func (c *Client) CreateToken(ctx context.Context, name, scope string, repos []string) (*Token, error) {
	b, n := jsonBody(map[string]any{"name": name, "scope": scope, "repos": repos})
	var t Token
	return &t, c.do(ctx, http.MethodPost, "/api/v1/tokens", b, n, &t)
}

// ListTokens lists tokens (without secrets).
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var t []Token
	return t, c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, -1, &t)
}

// DeleteToken revokes a token by name.
func (c *Client) DeleteToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(name), nil, -1, nil)
}

// UpdateRepo merges fields into a repository's configuration (null
// removes a field) and returns it once republished.
func (c *Client) UpdateRepo(ctx context.Context, name string, fields map[string]any) (*Repo, error) {
	b, n := jsonBody(fields)
	var r Repo
	return &r, c.do(ctx, http.MethodPatch, "/api/v1/repos/"+url.PathEscape(name), b, n, &r)
}

// ListKeys lists the server's signing keys.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var k []Key
	return k, c.do(ctx, http.MethodGet, "/api/v1/keys", nil, -1, &k)
}

// GenerateKey creates a signing key on the server.
func (c *Client) GenerateKey(ctx context.Context, name, uid, email, algorithm string) (*Key, error) {
	b, n := jsonBody(map[string]any{"name": name, "uid": uid, "email": email, "algorithm": algorithm})
	var k Key
	return &k, c.do(ctx, http.MethodPost, "/api/v1/keys", b, n, &k)
}

// ImportKey sends an armored private key to the server.
func (c *Client) ImportKey(ctx context.Context, name string, armored, passphrase []byte) (*Key, error) {
	b, n := jsonBody(map[string]any{"armored": string(armored), "passphrase": string(passphrase)})
	var k Key
	return &k, c.do(ctx, http.MethodPut, "/api/v1/keys/"+url.PathEscape(name), b, n, &k)
}

// DeleteKey deletes a signing key that no repository uses.
func (c *Client) DeleteKey(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/keys/"+url.PathEscape(name), nil, -1, nil)
}

// PublicKey returns a key's public part, armored or (binary) as APT's
// signed-by takes it.
func (c *Client) PublicKey(ctx context.Context, name string, binary bool) ([]byte, error) {
	path := "/api/v1/keys/" + url.PathEscape(name) + "/public"
	if binary {
		path += "?format=gpg"
	}
	var buf bytes.Buffer
	if err := c.doRaw(ctx, path, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *Client) doRaw(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errorOf(resp)
	}
	_, err = io.Copy(w, io.LimitReader(resp.Body, 4<<20))
	return err
}

// errorOf reads an error answer: the API's JSON error, or its text.
func errorOf(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, e) != nil {
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}

// Sync is a mirror sync record (GET /api/v1/repos/{repo}/syncs).
type Sync struct {
	ID         int64           `json:"id"`
	Repo       string          `json:"repo"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Error      string          `json:"error,omitempty"`
	Generation int64           `json:"generation,omitempty"`
	Stats      json.RawMessage `json:"stats,omitempty"`
	Progress   *SyncProgress   `json:"progress,omitempty"`
}

// SyncProgress is what a running sync has done so far.
type SyncProgress struct {
	Phase    string `json:"phase"`
	Packages int64  `json:"packages"`
	Listed   bool   `json:"listed"`
	Done     int64  `json:"done"`
	Bytes    int64  `json:"bytes"`
}

// StartSync starts a sync of a mirror (or joins the running one).
func (c *Client) StartSync(ctx context.Context, repo string) (*Sync, error) {
	var out Sync
	err := c.do(ctx, http.MethodPost, "/api/v1/repos/"+url.PathEscape(repo)+"/sync", nil, 0, &out)
	return &out, err
}

// GetSync returns one sync record of a mirror.
func (c *Client) GetSync(ctx context.Context, repo string, id int64) (*Sync, error) {
	var out Sync
	err := c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo)+"/syncs/"+strconv.FormatInt(id, 10), nil, 0, &out)
	return &out, err
}

// WaitSync returns a sync's record once the sync has ended or wait has
// passed, whichever comes first (the server bounds wait to a minute).
func (c *Client) WaitSync(ctx context.Context, repo string, id int64, wait time.Duration) (*Sync, error) {
	var out Sync
	err := c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo)+"/syncs/"+strconv.FormatInt(id, 10)+"?wait="+wait.String(), nil, 0, &out)
	return &out, err
}

// ListSyncs returns a mirror's sync records, newest first.
func (c *Client) ListSyncs(ctx context.Context, repo string, limit int) ([]Sync, error) {
	var out []Sync
	err := c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo)+"/syncs?limit="+strconv.Itoa(limit), nil, 0, &out)
	return out, err
}

// Snapshot is a named, frozen generation of a repository.
type Snapshot struct {
	Name       string    `json:"name"`
	Repo       string    `json:"repo"`
	Generation int64     `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	URL        string    `json:"url"`
}

// CreateSnapshot freezes a repository's current generation under name.
func (c *Client) CreateSnapshot(ctx context.Context, repo, name string) (*Snapshot, error) {
	var out Snapshot
	body, size := jsonBody(map[string]string{"name": name})
	err := c.do(ctx, http.MethodPost, "/api/v1/repos/"+url.PathEscape(repo)+"/snapshots", body, size, &out)
	return &out, err
}

// ListSnapshots returns a repository's snapshots.
func (c *Client) ListSnapshots(ctx context.Context, repo string) ([]Snapshot, error) {
	var out []Snapshot
	err := c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo)+"/snapshots", nil, 0, &out)
	return out, err
}

// DeleteSnapshot deletes a snapshot.
func (c *Client) DeleteSnapshot(ctx context.Context, repo, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/repos/"+url.PathEscape(repo)+"/snapshots/"+url.PathEscape(name), nil, 0, nil)
}
