package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/auth"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
)

// wantAuthError checks a 401 or 403 answer.
func wantAuthError(t *testing.T, r response, status int, what string) {
	t.Helper()
	r.want(t, status, what)
	_, code := r.apiErr(t)
	switch status {
	case http.StatusUnauthorized:
		if code != "unauthorized" {
			t.Errorf("%s: code %q, want unauthorized", what, code)
		}
		if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic ") {
			t.Errorf("%s: 401 with WWW-Authenticate %q, want a Basic challenge", what, h)
		}
	case http.StatusForbidden:
		if code != "forbidden" {
			t.Errorf("%s: code %q, want forbidden", what, code)
		}
	}
}

func TestAuthUpload(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("a")
	e.createRepo("b")
	read := e.token("reader", meta.ScopeRead)
	writeA := e.token("ci-a", meta.ScopeWrite, "a")
	write := e.token("ci", meta.ScopeWrite)

	pkg := func(n int) []byte { return buildRPM(t, fmt.Sprintf("p%d", n), "1", "1", "x") }
	tests := []struct {
		name   string
		repo   string
		token  string
		basic  bool
		status int
	}{
		{"no token", "a", "", false, http.StatusUnauthorized},
		{"invalid token", "a", "pky_not-a-token", false, http.StatusUnauthorized},
		{"invalid basic password", "a", "pky_not-a-token", true, http.StatusUnauthorized},
		{"read scope", "a", read, false, http.StatusForbidden},
		{"write token of repo a to b", "b", writeA, false, http.StatusForbidden},
		{"write token of repo a to a", "a", writeA, false, http.StatusCreated},
		{"write token", "b", write, false, http.StatusCreated},
		{"basic auth with token as password", "a", write, true, http.StatusCreated},
		{"admin token", "a", e.admin, false, http.StatusCreated},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/api/v1/repos/" + tc.repo + "/packages/p.rpm"
			var req *http.Request
			if tc.basic {
				req = e.request(http.MethodPut, path, "", strings.NewReader(string(pkg(i))))
				req.SetBasicAuth("anyone", tc.token)
			} else {
				req = e.request(http.MethodPut, path, tc.token, strings.NewReader(string(pkg(i))))
			}
			r := e.send(req)
			if tc.status == http.StatusCreated {
				r.want(t, tc.status, tc.name)
				return
			}
			wantAuthError(t, r, tc.status, tc.name)
		})
	}
	// Refused uploads left nothing.
	if n := len(e.packages("a")) + len(e.packages("b")); n != 4 {
		t.Errorf("%d packages in a and b, want the 4 allowed uploads", n)
	}
}

func TestAuthReadsArePublic(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	e.get("/api/v1/repos").want(t, http.StatusOK, "anonymous repository list")
	e.get("/r/repodata/repomd.xml").want(t, http.StatusOK, "anonymous read")
	// A bad credential is refused even where none is needed: the client
	// should learn that its token is wrong.
	wantAuthError(t, e.call(http.MethodGet, "/api/v1/repos", "pky_wrong", nil), http.StatusUnauthorized, "read with a bad token")
	who := decodeJSON[map[string]any](t, e.get("/api/v1/whoami").want(t, http.StatusOK, "whoami"))
	if who["anonymous"] != true {
		t.Errorf("anonymous whoami = %v", who)
	}
}

func TestAuthAdminRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	p := e.mustUpload("r", "x.rpm", buildRPM(t, "x", "1", "1", "x"))
	write := e.token("ci", meta.ScopeWrite)
	adminR := e.token("admin-of-r", meta.ScopeAdmin, "r")
	routes := []struct {
		method, path, body string
	}{
		{http.MethodPost, "/api/v1/repos", `{"name":"new","format":"rpm"}`},
		{http.MethodPatch, "/api/v1/repos/r", `{"note":"x"}`},
		{http.MethodDelete, fmt.Sprintf("/api/v1/repos/r/packages/%d", p.ID), ""},
		{http.MethodDelete, "/api/v1/repos/r", ""},
		{http.MethodGet, "/api/v1/tokens", ""},
		{http.MethodPost, "/api/v1/tokens", `{"name":"t","scope":"read"}`},
		{http.MethodDelete, "/api/v1/tokens/ci", ""},
	}
	for _, rt := range routes {
		var body []byte
		if rt.body != "" {
			body = []byte(rt.body)
		}
		what := rt.method + " " + rt.path
		wantAuthError(t, e.call(rt.method, rt.path, "", body), http.StatusUnauthorized, what+" without a token")
		wantAuthError(t, e.call(rt.method, rt.path, write, body), http.StatusForbidden, what+" with a write token")
	}
	// A token limited to repositories is never an admin of the server.
	for _, rt := range []int{0, 4, 5} {
		rt := routes[rt]
		var body []byte
		if rt.body != "" {
			body = []byte(rt.body)
		}
		wantAuthError(t, e.call(rt.method, rt.path, adminR, body), http.StatusForbidden, rt.method+" "+rt.path+" with an admin token limited to r")
	}
	// Within its repository it is an admin.
	e.call(http.MethodPatch, "/api/v1/repos/r", adminR, []byte(`{"note":"by admin-of-r"}`)).want(t, http.StatusOK, "PATCH r with an admin token limited to r")
	// The refused calls changed nothing; the admin token does each.
	if pkgs := e.packages("r"); len(pkgs) != 1 {
		t.Fatalf("packages after refused deletes: %+v", pkgs)
	}
	e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(routes[0].body)).want(t, http.StatusCreated, "admin creates a repository")
	e.call(http.MethodPatch, "/api/v1/repos/r", e.admin, []byte(routes[1].body)).want(t, http.StatusOK, "admin changes a repository")
	e.call(http.MethodDelete, routes[2].path, e.admin, nil).want(t, http.StatusOK, "admin deletes a package")
	if pkgs := e.packages("r"); len(pkgs) != 0 {
		t.Errorf("packages after the admin's delete: %+v", pkgs)
	}
	e.call(http.MethodGet, "/api/v1/tokens", e.admin, nil).want(t, http.StatusOK, "admin lists tokens")
	e.call(http.MethodDelete, "/api/v1/tokens/ci", e.admin, nil).want(t, http.StatusNoContent, "admin revokes a token")
	e.call(http.MethodDelete, "/api/v1/repos/r", e.admin, nil).want(t, http.StatusNoContent, "admin deletes a repository")
	e.get("/api/v1/repos/r").want(t, http.StatusNotFound, "deleted repository")
}

func TestAuthTokenLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	r := e.call(http.MethodPost, "/api/v1/tokens", e.admin, []byte(`{"name":"deploy","scope":"write","repos":["r"]}`))
	r.want(t, http.StatusCreated, "create token")
	created := decodeJSON[struct {
		ID    int64    `json:"id"`
		Name  string   `json:"name"`
		Scope string   `json:"scope"`
		Repos []string `json:"repos"`
		Token string   `json:"token"`
	}](t, r)
	if created.Name != "deploy" || created.Scope != "write" || len(created.Repos) != 1 || created.Repos[0] != "r" {
		t.Errorf("created token = %+v", created)
	}
	secret := created.Token
	if !strings.HasPrefix(secret, "pky_") || len(secret) < 40 {
		t.Fatalf("secret %q: want a long pky_ token", secret)
	}

	who := decodeJSON[map[string]any](t, e.call(http.MethodGet, "/api/v1/whoami", secret, nil).want(t, http.StatusOK, "whoami"))
	if who["name"] != "deploy" || who["scope"] != "write" {
		t.Errorf("whoami with the new token = %v", who)
	}

	list := e.call(http.MethodGet, "/api/v1/tokens", e.admin, nil).want(t, http.StatusOK, "list tokens")
	if strings.Contains(string(list.body), secret) || strings.Contains(string(list.body), auth.Hash(secret)) {
		t.Fatalf("token list shows the secret or its hash: %s", list.body)
	}
	toks := decodeJSON[[]map[string]any](t, list)
	found := false
	for _, tk := range toks {
		if _, ok := tk["token"]; ok {
			t.Errorf("token list entry has a token field: %v", tk)
		}
		if tk["name"] == "deploy" {
			found = true
			if tk["last_used"] == nil {
				t.Errorf("deploy was used (whoami) but has no last_used: %v", tk)
			}
		}
	}
	if !found {
		t.Errorf("token list misses deploy: %s", list.body)
	}

	e.upload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"), secret, "").want(t, http.StatusCreated, "upload with the new token")

	e.call(http.MethodPost, "/api/v1/tokens", e.admin, []byte(`{"name":"deploy","scope":"read"}`)).want(t, http.StatusConflict, "duplicate token name").apiErr(t)
	e.call(http.MethodPost, "/api/v1/tokens", e.admin, []byte(`{"name":"x","scope":"root"}`)).want(t, http.StatusBadRequest, "unknown scope").apiErr(t)
	e.call(http.MethodPost, "/api/v1/tokens", e.admin, []byte(`{"scope":"read"}`)).want(t, http.StatusBadRequest, "no name").apiErr(t)

	e.call(http.MethodDelete, "/api/v1/tokens/deploy", e.admin, nil).want(t, http.StatusNoContent, "revoke")
	wantAuthError(t, e.upload("r", "b.rpm", buildRPM(t, "b", "1", "1", "x"), secret, ""), http.StatusUnauthorized, "upload with a revoked token")
	wantAuthError(t, e.call(http.MethodGet, "/api/v1/whoami", secret, nil), http.StatusUnauthorized, "whoami with a revoked token")
	e.call(http.MethodDelete, "/api/v1/tokens/deploy", e.admin, nil).want(t, http.StatusNotFound, "revoke twice").apiErr(t)
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "packyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	path, created, err := auth.EnsureAdmin(ctx, db, dir, "")
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin: created=%v err=%v", created, err)
	}
	if path != filepath.Join(dir, auth.AdminTokenFile) {
		t.Errorf("path = %s, want <data>/admin.token", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token has mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	p, err := auth.New(db).Check(ctx, secret)
	if err != nil || p.Scope != meta.ScopeAdmin {
		t.Fatalf("the written token: principal %+v err %v, want an admin", p, err)
	}
	toks, _ := db.ListTokens(ctx)
	if len(toks) != 1 || toks[0].Hash == secret || toks[0].Hash != auth.Hash(secret) {
		t.Errorf("stored tokens %+v: want one, holding only the hash", toks)
	}

	// Idempotent: a second start neither creates a token nor rewrites the file.
	_, created, err = auth.EnsureAdmin(ctx, db, dir, "")
	if err != nil || created {
		t.Fatalf("second EnsureAdmin: created=%v err=%v", created, err)
	}
	b2, _ := os.ReadFile(path)
	if string(b2) != string(b) {
		t.Errorf("second EnsureAdmin rewrote admin.token")
	}
	if toks, _ := db.ListTokens(ctx); len(toks) != 1 {
		t.Errorf("%d tokens after the second EnsureAdmin, want 1", len(toks))
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		for _, en := range ents {
			if strings.HasSuffix(en.Name(), ".tmp") {
				t.Errorf("temporary file %s left in the data directory", en.Name())
			}
		}
	}
}

func TestEnsureAdminPreset(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "packyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const preset = "pky_preset-by-PACKYARD_ADMIN_TOKEN"

	_, created, err := auth.EnsureAdmin(ctx, db, dir, preset)
	if err != nil || !created {
		t.Fatalf("preset EnsureAdmin: created=%v err=%v", created, err)
	}
	p, err := auth.New(db).Check(ctx, preset)
	if err != nil || p.Scope != meta.ScopeAdmin {
		t.Fatalf("preset token: principal %+v err %v, want an admin", p, err)
	}
	if _, err := os.Stat(filepath.Join(dir, auth.AdminTokenFile)); err == nil {
		b, _ := os.ReadFile(filepath.Join(dir, auth.AdminTokenFile))
		if strings.TrimSpace(string(b)) != preset {
			t.Errorf("admin.token holds %q, not the preset", b)
		}
	}
	_, created, err = auth.EnsureAdmin(ctx, db, dir, preset)
	if err != nil || created {
		t.Fatalf("second preset EnsureAdmin: created=%v err=%v", created, err)
	}
	if toks, _ := db.ListTokens(ctx); len(toks) != 1 {
		t.Errorf("%d tokens after presetting twice, want 1", len(toks))
	}

	// A new preset on a server that already has an admin token adds it
	// beside the old one; both work.
	const next = "pky_rotated-preset"
	if _, created, err = auth.EnsureAdmin(ctx, db, dir, next); err != nil || !created {
		t.Fatalf("rotated preset: created=%v err=%v", created, err)
	}
	for _, s := range []string{preset, next} {
		if p, err := auth.New(db).Check(ctx, s); err != nil || p.Scope != meta.ScopeAdmin {
			t.Errorf("token %s: principal %+v err %v", s, p, err)
		}
	}
}

func TestEnsureAdminPresetOverHTTP(t *testing.T) {
	e := newEnv(t, envOptions{})
	const preset = "pky_http-preset"
	if _, _, err := auth.EnsureAdmin(context.Background(), e.db, e.data, preset); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodPost, "/api/v1/repos", preset, []byte(`{"name":"r","format":"rpm"}`)).want(t, http.StatusCreated, "create with the preset admin token")
}
