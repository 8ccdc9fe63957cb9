package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format/deb/debtest"
)

func (e *env) createDebRepo(name string) {
	e.t.Helper()
	r := e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(`{"name":"`+name+`","format":"deb"}`))
	r.want(e.t, http.StatusCreated, "create deb repository "+name)
}

func buildDebFile(t *testing.T, name, version, arch, desc string) []byte {
	t.Helper()
	b, err := debtest.Build(debtest.Spec{
		Package: name, Version: version, Architecture: arch, Maintainer: "T <t@example.com>",
		Description: desc, Compression: "xz", ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Files: []debtest.File{{Path: "./usr/share/doc/" + name + "/README", Body: []byte(desc), Mode: 0o644}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDebUploads: distributions and components from the query and from
// WebDAV paths, a pool file shared by two distributions, 200 for the same
// bytes, 409 for others, and the client configuration files.
func TestDebUploads(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createDebRepo("d")
	hello := buildDebFile(t, "hello", "1.0-1", "amd64", "hello\nworld")
	q := func(dist, comp string) string { return "distribution=" + dist + "&component=" + comp }
	e.upload("d", "hello_1.0-1_amd64.deb", hello, e.admin, q("bookworm", "main")).want(t, http.StatusCreated, "upload")
	e.upload("d", "hello_1.0-1_amd64.deb", hello, e.admin, q("trixie", "main")).want(t, http.StatusCreated, "same file, second distribution")
	e.upload("d", "hello_1.0-1_amd64.deb", hello, e.admin, q("bookworm", "main")).want(t, http.StatusOK, "identical")
	other := buildDebFile(t, "hello", "1.0-1", "amd64", "other\nbytes")
	r := e.upload("d", "hello_1.0-1_amd64.deb", other, e.admin, q("bookworm", "main"))
	r.want(t, http.StatusConflict, "other bytes, same identity")
	// Other bytes that would land on the shared pool file, in a third
	// distribution: refused too.
	e.upload("d", "hello_1.0-1_amd64.deb", other, e.admin, q("sid", "main")).want(t, http.StatusConflict, "other bytes at the same pool path")
	e.upload("d", "hello_1.0-1_amd64.deb", hello, e.admin, "").want(t, http.StatusBadRequest, "no distribution")

	// WebDAV: /dav/REPO/DIST/COMPONENT/FILE.
	tool := buildDebFile(t, "tool", "2.0", "all", "a tool\nfor all")
	req := e.request(http.MethodPut, "/dav/d/bookworm/contrib/tool_2.0_all.deb", e.admin, strings.NewReader(string(tool)))
	e.send(req).want(t, http.StatusCreated, "WebDAV PUT")
	req = e.request(http.MethodPut, "/dav/d/tool_2.0_all.deb", e.admin, strings.NewReader(string(tool)))
	e.send(req).want(t, http.StatusBadRequest, "WebDAV PUT without distribution")

	pk := e.get("/d/dists/bookworm/main/binary-amd64/Packages").want(t, http.StatusOK, "Packages")
	if !strings.Contains(string(pk.body), "Filename: pool/main/h/hello/hello_1.0-1_amd64.deb\n") {
		t.Errorf("bookworm main Packages:\n%s", pk.body)
	}
	contrib := string(e.get("/d/dists/bookworm/contrib/binary-amd64/Packages").want(t, http.StatusOK, "contrib").body)
	if !strings.Contains(contrib, "Package: tool\n") {
		t.Errorf("the Architecture: all package is not in the amd64 index:\n%s", contrib)
	}
	e.get("/d/pool/main/h/hello/hello_1.0-1_amd64.deb").want(t, http.StatusOK, "pool file")
	rel := string(e.get("/d/dists/bookworm/Release").want(t, http.StatusOK, "Release").body)
	if !strings.Contains(rel, "Components: contrib main\n") || !strings.Contains(rel, "Architectures: amd64\n") {
		t.Errorf("Release:\n%s", rel)
	}
	in := string(e.get("/d/dists/bookworm/InRelease").want(t, http.StatusOK, "InRelease").body)
	if !strings.HasPrefix(in, "-----BEGIN PGP SIGNED MESSAGE-----\n") || !strings.Contains(in, rel) {
		t.Errorf("InRelease does not clearsign the Release file:\n%s", in)
	}
	e.get("/d/dists/bookworm/Release.gpg").want(t, http.StatusOK, "Release.gpg")

	list := string(e.get("/d/d.list").want(t, http.StatusOK, ".list").body)
	wantList := "deb [signed-by=/etc/apt/keyrings/d.gpg] " + e.url + "/d/ bookworm contrib main\n" +
		"deb [signed-by=/etc/apt/keyrings/d.gpg] " + e.url + "/d/ trixie main\n"
	if !strings.HasSuffix(list, wantList) {
		t.Errorf(".list:\n%s\nwant it to end with\n%s", list, wantList)
	}
	src := string(e.get("/d/d.sources?distribution=trixie").want(t, http.StatusOK, ".sources").body)
	if !strings.HasSuffix(src, "Types: deb\nURIs: "+e.url+"/d/\nSuites: trixie\nComponents: main\nSigned-By: /etc/apt/keyrings/d.gpg\n") {
		t.Errorf(".sources:\n%s", src)
	}
}

// TestDebUploadMalformedCorpus sends every malformed .deb through HTTP:
// each is refused with 400 or 413 and a message, and nothing remains.
func TestDebUploadMalformedCorpus(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDebRepo("d")
	valid := debtest.Spec{Package: "victim", Version: "1.0-1", Architecture: "amd64", Maintainer: "T <t@example.com>",
		Description: "the valid package\nthe corpus is derived from", Compression: "gz",
		Files: []debtest.File{{Path: "./usr/bin/victim", Body: []byte("#!/bin/sh\n"), Mode: 0o755}}}
	cases := debtest.Malformed(valid)
	if len(cases) < 10 {
		t.Fatalf("debtest.Malformed returned %d cases", len(cases))
	}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			blobs := e.blobCount()
			r := e.upload("d", url.PathEscape(fmt.Sprintf("bad-%03d.deb", i)), c.Data, e.admin, "distribution=stable&component=main")
			want := http.StatusBadRequest
			if c.TooLarge {
				want = http.StatusRequestEntityTooLarge
			}
			if r.status != want {
				t.Fatalf("got %v, want %d", r, want)
			}
			msg, _ := r.apiErr(t)
			if msg == "" || strings.HasPrefix(msg, "internal error") {
				t.Errorf("message %q does not say what is wrong", msg)
			}
			if n := e.blobCount(); n != blobs {
				t.Errorf("blob count went from %d to %d through a refused upload", blobs, n)
			}
			if n := e.tempCount(); n != 0 {
				t.Errorf("%d temporary files left by a refused upload", n)
			}
		})
	}
	if pk := e.packages("d"); len(pk) != 0 {
		t.Errorf("%d packages after the malformed corpus, want 0", len(pk))
	}
	data, err := debtest.Build(valid)
	if err != nil {
		t.Fatal(err)
	}
	e.upload("d", "victim_1.0-1_amd64.deb", data, e.admin, "distribution=stable&component=main").want(t, http.StatusCreated, "the valid original")
}
