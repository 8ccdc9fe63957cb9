package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

func TestUploadCreated(t *testing.T) {
	e := newEnv(t, envOptions{})
	rp := e.createRepo("el9")
	data := buildRPM(t, "hello", "1.2.3", "4.el9", "hello world")

	r := e.upload("el9", "hello-1.2.3-4.el9.x86_64.rpm", data, e.admin, "")
	r.want(t, http.StatusCreated, "first upload")
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	p := decodeJSON[pkgInfo](t, r)
	if p.Name != "hello" || p.Version != "1.2.3" || p.Release != "4.el9" || p.Arch != "x86_64" {
		t.Errorf("identity = %s-%s-%s.%s, want hello-1.2.3-4.el9.x86_64", p.Name, p.Version, p.Release, p.Arch)
	}
	if p.SHA256 != sha256Hex(data) {
		t.Errorf("sha256 = %q, want %q", p.SHA256, sha256Hex(data))
	}
	if p.Size != int64(len(data)) {
		t.Errorf("size = %d, want %d", p.Size, len(data))
	}
	if !p.Created || p.ID == 0 || p.Repo != "el9" || !strings.HasSuffix(p.Path, ".rpm") {
		t.Errorf("created=%v id=%d repo=%q path=%q", p.Created, p.ID, p.Repo, p.Path)
	}
	if p.UploadedBy != "admin" {
		t.Errorf("uploaded_by = %q, want the token's name admin", p.UploadedBy)
	}
	if p.Generation <= rp.CurrentGeneration {
		t.Errorf("generation = %d, want > %d (the generation before the upload)", p.Generation, rp.CurrentGeneration)
	}
	if p.URL != e.url+"/el9/"+p.Path {
		t.Errorf("url = %q, want %q", p.URL, e.url+"/el9/"+p.Path)
	}
	// The answer came after the publish: the repository is at that
	// generation and serves the bytes.
	now := decodeJSON[repoInfo](t, e.get("/api/v1/repos/el9").want(t, http.StatusOK, "show repo"))
	if now.CurrentGeneration != p.Generation {
		t.Errorf("repository is at generation %d, upload said %d", now.CurrentGeneration, p.Generation)
	}
	got := e.get("/el9/"+p.Path).want(t, http.StatusOK, "download")
	if !bytes.Equal(got.body, data) {
		t.Errorf("downloaded %d bytes that differ from the %d uploaded", len(got.body), len(data))
	}
	if !strings.Contains(e.primaryXML("el9"), "<name>hello</name>") {
		t.Errorf("primary.xml of generation %d does not list hello", p.Generation)
	}
}

func TestUploadIdenticalAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "same", "1", "1", "same bytes")
	first := e.mustUpload("r", "same.rpm", data)
	blobs := e.blobCount()

	r := e.upload("r", "same.rpm", data, e.admin, "")
	r.want(t, http.StatusOK, "identical re-upload")
	again := decodeJSON[pkgInfo](t, r)
	if again.Created || again.ID != first.ID || again.SHA256 != first.SHA256 || again.Path != first.Path {
		t.Errorf("re-upload answered created=%v id=%d sha256=%s path=%s; first was id=%d sha256=%s path=%s",
			again.Created, again.ID, again.SHA256, again.Path, first.ID, first.SHA256, first.Path)
	}
	if again.Generation < first.Generation {
		t.Errorf("re-upload names generation %d, older than the first upload's %d", again.Generation, first.Generation)
	}
	if n := len(e.packages("r")); n != 1 {
		t.Errorf("%d packages after an identical re-upload, want 1", n)
	}
	if n := e.blobCount(); n != blobs {
		t.Errorf("identical re-upload changed the blob count from %d to %d", blobs, n)
	}
}

func TestUploadConflict(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	first := e.mustUpload("r", "pkg.rpm", buildRPM(t, "pkg", "2.0", "1", "original"))
	other := buildRPM(t, "pkg", "2.0", "1", "rebuilt with other content")
	blobs := e.blobCount()

	r := e.upload("r", "pkg.rpm", other, e.admin, "")
	r.want(t, http.StatusConflict, "same NEVRA, other bytes")
	msg, code := r.apiErr(t)
	if code != "conflict" {
		t.Errorf("code = %q, want conflict", code)
	}
	for _, want := range []string{first.Path, first.SHA256} {
		if !strings.Contains(msg, want) {
			t.Errorf("conflict message %q does not name the existing package (%s)", msg, want)
		}
	}
	ex := decodeJSON[struct {
		Existing *pkgInfo `json:"existing"`
	}](t, r).Existing
	if ex == nil {
		t.Fatalf("409 without an existing field: %v", r)
	}
	if ex.ID != first.ID || ex.SHA256 != first.SHA256 || ex.Name != "pkg" || ex.Version != "2.0" || ex.Path != first.Path || ex.Repo != "r" {
		t.Errorf("existing = %+v, want the first upload %+v", *ex, first)
	}
	// Nothing was lost and nothing was added.
	pkgs := e.packages("r")
	if len(pkgs) != 1 || pkgs[0].SHA256 != first.SHA256 {
		t.Errorf("packages after the conflict: %+v", pkgs)
	}
	if n := e.blobCount(); n != blobs {
		t.Errorf("refused upload changed the blob count from %d to %d", blobs, n)
	}
	if n := e.tempCount(); n != 0 {
		t.Errorf("%d temporary files left after a refused upload", n)
	}
}

func TestUploadNoWait(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "later", "1", "1", "x")
	r := e.upload("r", "later.rpm", data, e.admin, "wait=false")
	r.want(t, http.StatusCreated, "upload with wait=false")
	p := decodeJSON[pkgInfo](t, r)
	if p.Generation != 0 || !p.Created || p.SHA256 != sha256Hex(data) {
		t.Errorf("wait=false answered generation=%d created=%v sha256=%s; want generation 0", p.Generation, p.Created, p.SHA256)
	}
	// Durable at once: the package record is there.
	if pkgs := e.packages("r"); len(pkgs) != 1 || pkgs[0].ID != p.ID {
		t.Fatalf("packages right after a wait=false upload: %+v", pkgs)
	}
	// Visible soon after, without another upload to push it.
	waitUntil(t, "the wait=false upload to be served", func() bool {
		return e.get("/r/"+p.Path).status == http.StatusOK
	})
	waitUntil(t, "primary.xml to list the wait=false upload", func() bool {
		return strings.Contains(e.primaryXML("r"), "<name>later</name>")
	})

	r = e.upload("r", "later.rpm", data, e.admin, "wait=maybe")
	r.want(t, http.StatusBadRequest, "wait=maybe")
	r.apiErr(t)
}

func TestUploadMissingRepo(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.upload("nope", "a.rpm", buildRPM(t, "a", "1", "1", "x"), e.admin, "")
	r.want(t, http.StatusNotFound, "upload to a missing repository")
	msg, code := r.apiErr(t)
	if code != "not_found" || !strings.Contains(msg, "nope") {
		t.Errorf("error = %q code %q, want not_found naming the repository", msg, code)
	}
	if n := e.blobCount(); n != 0 {
		t.Errorf("%d blobs after an upload to a missing repository", n)
	}
}

func TestUploadBadFileName(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "a", "1", "1", "x")
	for _, name := range []string{"..%2F..%2Fetc%2Fpasswd", "a%2Fb.rpm", "a%5Cb.rpm", "a%00.rpm"} {
		r := e.upload("r", name, data, e.admin, "")
		if r.status != http.StatusBadRequest {
			t.Errorf("file name %s: got %v, want 400", name, r)
			continue
		}
		if msg, _ := r.apiErr(t); !strings.Contains(msg, "file name") {
			t.Errorf("file name %s: message %q does not say the name is wrong", name, msg)
		}
	}
	if pkgs := e.packages("r"); len(pkgs) != 0 {
		t.Errorf("packages after uploads with bad names: %+v", pkgs)
	}
}

// TestUploadNoAPILimit: a server built without MaxUploadSize leaves the
// limit to the repository service instead of refusing every upload that
// declares its length.
func TestUploadNoAPILimit(t *testing.T) {
	e := newEnv(t, envOptions{maxUpload: -1})
	e.createRepo("r")
	e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))
}

// bigRPM is a valid package of about n bytes that does not compress.
func bigRPM(t *testing.T, n int) []byte {
	t.Helper()
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	spec := rpmSpec("big", "1", "1", "")
	spec.Files[0].Body = payload
	b, err := rpmtest.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("package of %d bytes, want at least %d", len(b), n)
	}
	return b
}

// noLen hides a reader's length so that the client sends the body chunked,
// without Content-Length.
type noLen struct{ io.Reader }

func TestUploadTooLarge(t *testing.T) {
	const limit = 16 << 10
	data := bigRPM(t, 64<<10)
	tests := []struct {
		name    string
		limit   int64
		chunked bool
	}{
		{"content-length", limit, false},
		{"chunked", limit, true},
		// The limit is hit while the parser still reads the header.
		{"chunked tiny limit", 200, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{maxUpload: tc.limit})
			e.createRepo("r")
			blobs := e.blobCount()
			var body io.Reader = bytes.NewReader(data)
			if tc.chunked {
				body = noLen{body}
			}
			req := e.request(http.MethodPut, "/api/v1/repos/r/packages/big.rpm", e.admin, body)
			if tc.chunked && req.ContentLength != 0 {
				t.Fatalf("request has Content-Length %d, want none", req.ContentLength)
			}
			r := e.send(req)
			r.want(t, http.StatusRequestEntityTooLarge, "upload over the limit")
			msg, code := r.apiErr(t)
			if code != "too_large" || !strings.Contains(msg, fmt.Sprint(tc.limit)) {
				t.Errorf("error %q code %q: want too_large naming the limit %d", msg, code, tc.limit)
			}
			if n := e.blobCount(); n != blobs {
				t.Errorf("blob count %d after a refused upload, want %d", n, blobs)
			}
			if n := e.tempCount(); n != 0 {
				t.Errorf("%d temporary files left after a refused upload", n)
			}
			if pkgs := e.packages("r"); len(pkgs) != 0 {
				t.Errorf("packages after a refused upload: %+v", pkgs)
			}
			// The server still takes a package under the limit.
			if tc.limit > 1024 {
				e.mustUpload("r", "small.rpm", buildRPM(t, "small", "1", "1", "x"))
			}
		})
	}
}

// acceptable lists corpus entries that are structurally sound and that a
// server may take (converting what it must), per rpmtest.Malformed.
var acceptable = map[string]bool{"invalid-utf8-summary": true, "files-100000": true}

// TestUploadMalformedCorpus sends every malformed RPM through HTTP: each is
// refused with a message that says what is wrong, the server keeps
// serving, and nothing of it remains.
func TestUploadMalformedCorpus(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	valid := buildRPM(t, "victim", "1.0", "1", "the valid package the corpus is derived from")
	corpus := rpmtest.Malformed(valid)
	if len(corpus) == 0 {
		t.Fatal("rpmtest.Malformed returned an empty corpus")
	}
	names := make([]string, 0, len(corpus))
	for name := range corpus {
		names = append(names, name)
	}
	slices.Sort(names)
	words := []string{"rpm", "header", "lead", "signature", "package", "tag", "truncated", "magic"}
	var accepted []string
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			blobs := e.blobCount()
			file := fmt.Sprintf("bad-%03d.rpm", i)
			r := e.upload("r", url.PathEscape(file), corpus[name], e.admin, "")
			e.get("/healthz").want(t, http.StatusOK, "healthz after "+name)
			if acceptable[name] && r.status == http.StatusCreated {
				p := decodeJSON[struct {
					pkgInfo
					Summary string `json:"summary"`
				}](t, r)
				accepted = append(accepted, p.Name)
				if !utf8.ValidString(p.Summary) {
					t.Errorf("accepted summary %q is not UTF-8", p.Summary)
				}
				checkXML(t, e.primaryXML("r"))
				return
			}
			if r.status != http.StatusBadRequest && r.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("got %v, want 400 or 413", r)
			}
			msg, code := r.apiErr(t)
			if code != "invalid_package" && code != "too_large" {
				t.Errorf("code = %q, want invalid_package or too_large", code)
			}
			low := strings.ToLower(msg)
			if !slices.ContainsFunc(words, func(w string) bool { return strings.Contains(low, w) }) {
				t.Errorf("message %q does not say what is wrong (mentions none of %v)", msg, words)
			}
			if strings.HasPrefix(msg, "internal error") {
				t.Errorf("message %q is an internal error", msg)
			}
			if n := e.blobCount(); n != blobs {
				t.Errorf("blob count went from %d to %d through a refused upload", blobs, n)
			}
			if n := e.tempCount(); n != 0 {
				t.Errorf("%d temporary files left by a refused upload", n)
			}
		})
	}
	var got []string
	for _, p := range e.packages("r") {
		got = append(got, p.Name)
	}
	slices.Sort(got)
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Errorf("packages %v after the corpus, want only the accepted %v", got, accepted)
	}
	// And the valid original still goes in.
	e.mustUpload("r", "victim.rpm", valid)
}

// checkXML fails unless doc is well-formed XML.
func checkXML(t *testing.T, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("metadata is not well-formed XML: %v", err)
		}
	}
}

// TestUploadIncompleteRPM: a package cut inside its payload (a copy still
// in progress) or with bytes appended is refused, as rpm refuses it; the
// signature header gives the size.
func TestUploadIncompleteRPM(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	full := buildRPM(t, "whole", "1.0", "1", strings.Repeat("payload ", 4096))
	for name, data := range map[string][]byte{
		"cut":      full[:len(full)-100],
		"appended": append(append([]byte(nil), full...), "trailing"...),
	} {
		blobs := e.blobCount()
		r := e.upload("r", "whole-1.0-1.x86_64.rpm", data, e.admin, "")
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s: got %v, want 400", name, r)
		}
		if msg, _ := r.apiErr(t); !strings.Contains(msg, "incomplete or has bytes appended") {
			t.Errorf("%s: message %q", name, msg)
		}
		if n := e.blobCount(); n != blobs {
			t.Errorf("%s: blob count went from %d to %d", name, blobs, n)
		}
	}
	e.mustUpload("r", "whole-1.0-1.x86_64.rpm", full)
}
