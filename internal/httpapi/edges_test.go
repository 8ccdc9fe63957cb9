package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/packyard/packyard/internal/format/arch/archtest"
)

type genFilesAnswer struct {
	Repo       string   `json:"repo"`
	Generation int64    `json:"generation"`
	Seq        int64    `json:"seq"`
	Current    bool     `json:"current"`
	FeedSeq    int64    `json:"feed_seq"`
	Since      int64    `json:"since"`
	Removed    []string `json:"removed"`
	Files      []struct {
		Path    string   `json:"path"`
		Digest  string   `json:"digest"`
		Size    int64    `json:"size"`
		Parts   []string `json:"parts"`
		Data    []byte   `json:"data"`
		Pointer bool     `json:"pointer"`
	} `json:"files"`
}

// TestGenerationFiles: the file list of a generation names every file the
// repository serves, each with the digest and size of the bytes served
// under its path, and marks the pointer files.
func TestGenerationFiles(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createRepo("el")
	e.mustUpload("el", "a-1.0-1.x86_64.rpm", buildRPM(t, "a", "1.0", "1", "a"))
	e.mustUpload("el", "b-1.0-1.x86_64.rpm", buildRPM(t, "b", "1.0", "1", "b"))

	gl := decodeJSON[genFilesAnswer](t, e.get("/api/v1/repos/el/generations/current/files").want(t, http.StatusOK, "current files"))
	if gl.Repo != "el" || !gl.Current || gl.Generation < 2 || gl.FeedSeq < gl.Seq {
		t.Fatalf("answer %+v: want repository el, current, generation >= 2, feed_seq >= seq", gl)
	}
	paths := map[string]bool{}
	pointers := map[string]bool{}
	for _, f := range gl.Files {
		paths[f.Path] = true
		pointers[f.Path] = f.Pointer
		r := e.get("/el/"+f.Path).want(t, http.StatusOK, "GET "+f.Path)
		if got := sha256Hex(r.body); got != f.Digest || int64(len(r.body)) != f.Size {
			t.Errorf("%s: served %d bytes with sha256 %s, list says %d bytes %s", f.Path, len(r.body), got, f.Size, f.Digest)
		}
		if len(f.Parts) == 0 && f.Data == nil {
			e.get("/api/v1/blobs/"+f.Digest).want(t, http.StatusUnauthorized, "anonymous blob")
		}
	}
	for _, p := range e.packages("el") {
		if !paths[p.Path] || pointers[p.Path] {
			t.Errorf("package %s: listed %v, pointer %v; want listed, not a pointer", p.Path, paths[p.Path], pointers[p.Path])
		}
	}
	for _, p := range []string{"repodata/repomd.xml", "repodata/repomd.xml.asc"} {
		if !paths[p] || !pointers[p] {
			t.Errorf("%s: listed %v, pointer %v; want a listed pointer", p, paths[p], pointers[p])
		}
	}
	hashed := 0
	for p, ptr := range pointers {
		if strings.HasPrefix(p, "repodata/") && strings.HasSuffix(p, ".xml.gz") {
			hashed++
			if ptr {
				t.Errorf("%s is content-addressed but marked a pointer", p)
			}
		}
	}
	if hashed == 0 {
		t.Errorf("no repodata/*.xml.gz in %v", paths)
	}

	// An older generation by number; bad numbers.
	old := decodeJSON[genFilesAnswer](t, e.get(fmt.Sprintf("/api/v1/repos/el/generations/%d/files", gl.Generation-1)).want(t, http.StatusOK, "older generation"))
	if old.Generation != gl.Generation-1 || old.Current || len(old.Files) >= len(gl.Files) {
		t.Errorf("older generation: %d current=%v with %d files; want %d, not current, fewer than %d", old.Generation, old.Current, len(old.Files), gl.Generation-1, len(gl.Files))
	}
	for _, bad := range []string{"0", "-1", "x", "1e3"} {
		_, code := e.get("/api/v1/repos/el/generations/"+bad+"/files").want(t, http.StatusBadRequest, "generation "+bad).apiErr(t)
		if code != "bad_request" {
			t.Errorf("generation %s: code %q", bad, code)
		}
	}
	e.get("/api/v1/repos/el/generations/999/files").want(t, http.StatusNotFound, "unknown generation")

	// The difference from the older generation, applied to its list, is
	// the current list; it is smaller.
	delta := decodeJSON[genFilesAnswer](t, e.get(fmt.Sprintf("/api/v1/repos/el/generations/current/files?since=%d", old.Generation)).want(t, http.StatusOK, "delta"))
	if delta.Since != old.Generation || delta.Generation != gl.Generation || len(delta.Files) == 0 || len(delta.Files) >= len(gl.Files) {
		t.Errorf("delta since %d: since %d generation %d with %d files; want %d files fewer than %d", old.Generation, delta.Since, delta.Generation, len(delta.Files), len(gl.Files), len(gl.Files))
	}
	applied := map[string]string{}
	for _, f := range old.Files {
		applied[f.Path] = f.Digest
	}
	for _, p := range delta.Removed {
		delete(applied, p)
	}
	for _, f := range delta.Files {
		applied[f.Path] = f.Digest
	}
	want := map[string]string{}
	for _, f := range gl.Files {
		want[f.Path] = f.Digest
	}
	if fmt.Sprint(applied) != fmt.Sprint(want) {
		t.Errorf("old list + delta:\n%v\nwant the current list:\n%v", applied, want)
	}
	if len(delta.Removed) == 0 {
		t.Error("the delta removes nothing, but the index files changed names")
	}
	for _, bad := range []string{"0", "x", fmt.Sprint(gl.Generation + 1)} {
		e.get("/api/v1/repos/el/generations/current/files?since="+bad).want(t, http.StatusBadRequest, "since="+bad)
	}
	e.get("/api/v1/repos/nope/generations/current/files").want(t, http.StatusNotFound, "unknown repository")
}

type edgeAnswer struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	LastError string `json:"last_error"`
	Repos     map[string]struct {
		Generation     int64   `json:"generation"`
		Current        int64   `json:"current"`
		LagGenerations int64   `json:"lag_generations"`
		LagSeconds     float64 `json:"lag_seconds"`
		Missing        bool    `json:"missing"`
	} `json:"repos"`
}

// TestGenerationFilesArch: a pacman repository's list also names the
// package signatures (kept with the package's record, not as blobs: their
// bytes are in the list) and the "any" packages under every architecture's
// directory, as the repository serves them.
func TestGenerationFilesArch(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createArchRepo("r", "")
	signer := readEntities(t, seedArmored(t))[0]
	sign := func(data []byte) string {
		var b bytes.Buffer
		if err := openpgp.DetachSign(&b, signer, bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	hs, ds := archSpec("hello", "1.0-1", "x86_64", "zst", "h"), archSpec("data", "1.0-1", "any", "zst", "d")
	hello, data := buildArch(t, hs), buildArch(t, ds)
	e.uploadArch("r", archtest.FileName(hs), hello, sign(hello)).want(t, http.StatusCreated, "upload hello")
	e.uploadArch("r", archtest.FileName(ds), data, sign(data)).want(t, http.StatusCreated, "upload data")

	gl := decodeJSON[genFilesAnswer](t, e.get("/api/v1/repos/r/generations/current/files").want(t, http.StatusOK, "files"))
	listed := map[string]bool{}
	for _, f := range gl.Files {
		listed[f.Path] = true
		body := e.get("/r/"+f.Path).want(t, http.StatusOK, "GET "+f.Path).body
		if sha256Hex(body) != f.Digest || int64(len(body)) != f.Size {
			t.Errorf("%s: the list's digest or size is not what is served", f.Path)
		}
		if strings.HasSuffix(f.Path, ".pkg.tar.zst.sig") && !bytes.Equal(f.Data, body) {
			t.Errorf("%s: the list does not carry the signature's bytes", f.Path)
		}
	}
	for _, p := range []string{
		"x86_64/" + archtest.FileName(hs), "x86_64/" + archtest.FileName(hs) + ".sig",
		"any/" + archtest.FileName(ds), "any/" + archtest.FileName(ds) + ".sig",
		"x86_64/" + archtest.FileName(ds), "x86_64/" + archtest.FileName(ds) + ".sig",
		"x86_64/r.db", "x86_64/r.db.sig", "x86_64/r.files",
	} {
		if !listed[p] {
			t.Errorf("the list lacks %s", p)
		}
	}
}

// TestEdgeHeartbeat: an edge token reports under its own name only; the
// origin shows every edge's lag in the API and in /metrics; an edge token
// reads but cannot upload.
func TestEdgeHeartbeat(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("el")
	e.mustUpload("el", "a-1.0-1.x86_64.rpm", buildRPM(t, "a", "1.0", "1", "a"))
	cur := decodeJSON[genFilesAnswer](t, e.get("/api/v1/repos/el/generations/current/files")).Generation

	edge := e.token("edge-1", "edge")
	reader := e.token("reader", "read")
	beat := func(name, token string, body string) response {
		return e.call(http.MethodPost, "/api/v1/edges/"+name+"/heartbeat", token, []byte(body))
	}
	ok := fmt.Sprintf(`{"version":"1.0","repos":{"el":%d,"gone":3},"last_sync":"2026-01-02T03:04:05Z"}`, cur)
	beat("edge-1", "", ok).want(t, http.StatusUnauthorized, "heartbeat without a token")
	beat("edge-1", "pky_wrong", ok).want(t, http.StatusUnauthorized, "heartbeat with a bad token")
	beat("edge-1", reader, ok).want(t, http.StatusForbidden, "heartbeat with a read token")
	beat("edge-2", edge, ok).want(t, http.StatusForbidden, "heartbeat under another edge's name")
	beat("edge-1", edge, `{"repos":{"el":-1}}`).want(t, http.StatusBadRequest, "negative generation")
	beat("edge-1", edge, `not json`).want(t, http.StatusBadRequest, "malformed heartbeat")
	beat("bad name", e.admin, ok).want(t, http.StatusBadRequest, "bad edge name")
	beat("edge-1", edge, ok).want(t, http.StatusOK, "heartbeat")
	beat("edge-admin", e.admin, `{"version":"x","repos":{"el":0},"last_error":"boom"}`).want(t, http.StatusOK, "admin heartbeat")

	// The edge token reads blobs but does not write.
	e.upload("el", "b-1.0-1.x86_64.rpm", buildRPM(t, "b", "1.0", "1", "b"), edge, "").want(t, http.StatusForbidden, "upload with an edge token")
	e.mustUpload("el", "c-1.0-1.x86_64.rpm", buildRPM(t, "c", "1.0", "1", "c"))

	e.get("/api/v1/edges").want(t, http.StatusUnauthorized, "anonymous edge list")
	list := decodeJSON[[]edgeAnswer](t, e.call(http.MethodGet, "/api/v1/edges", reader, nil).want(t, http.StatusOK, "edge list"))
	if len(list) != 2 || list[0].Name != "edge-1" || list[1].Name != "edge-admin" {
		t.Fatalf("edges = %+v; want edge-1 and edge-admin", list)
	}
	r := list[0].Repos["el"]
	if r.Generation != cur || r.Current != cur+1 || r.LagGenerations != 1 || r.LagSeconds <= 0 || r.LagSeconds > 60 {
		t.Errorf("edge-1 el = %+v; want generation %d, current %d, lag 1 generation, a few seconds", r, cur, cur+1)
	}
	if g, ok := list[0].Repos["gone"]; ok {
		t.Errorf("edge-1 gone = %+v; a repository the origin does not have is ignored", g)
	}
	if a := list[1]; a.LastError != "boom" || a.Repos["el"].LagGenerations != cur+1 {
		t.Errorf("edge-admin = %+v; want last_error boom, lag %d", a, cur+1)
	}

	m := string(e.get("/metrics").want(t, http.StatusOK, "metrics").body)
	for _, want := range []string{
		`packyard_edge_lag_generations{edge="edge-1",repo="el"} 1`,
		fmt.Sprintf(`packyard_edge_lag_generations{edge="edge-admin",repo="el"} %d`, cur+1),
		fmt.Sprintf(`packyard_edge_generation{edge="edge-1",repo="el"} %d`, cur),
		`packyard_edge_error{edge="edge-admin"} 1`,
		`packyard_edge_heartbeat_age_seconds{edge="edge-1"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Caught up: no lag.
	beat("edge-1", edge, fmt.Sprintf(`{"version":"1.0","repos":{"el":%d}}`, cur+1)).want(t, http.StatusOK, "heartbeat")
	list = decodeJSON[[]edgeAnswer](t, e.call(http.MethodGet, "/api/v1/edges", reader, nil))
	if r := list[0].Repos["el"]; r.LagGenerations != 0 || r.LagSeconds != 0 {
		t.Errorf("caught-up edge: %+v; want no lag", r)
	}
	e.call(http.MethodDelete, "/api/v1/edges/edge-admin", edge, nil).want(t, http.StatusForbidden, "delete an edge with an edge token")
	e.call(http.MethodDelete, "/api/v1/edges/edge-admin", e.admin, nil).want(t, http.StatusNoContent, "delete an edge")
	e.call(http.MethodDelete, "/api/v1/edges/edge-admin", e.admin, nil).want(t, http.StatusNotFound, "delete it again")
}
