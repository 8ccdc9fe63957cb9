package httpapi_test

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"path"
	"strconv"
	"strings"
	"testing"
)

// multistatus is a PROPFIND answer as a WebDAV client parses it: by
// namespace, not by prefix.
type multistatus struct {
	XMLName   xml.Name `xml:"DAV: multistatus"`
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				DisplayName  string `xml:"DAV: displayname"`
				ResourceType struct {
					Collection *struct{} `xml:"DAV: collection"`
				} `xml:"DAV: resourcetype"`
				ContentLength string `xml:"DAV: getcontentlength"`
				ETag          string `xml:"DAV: getetag"`
				LastModified  string `xml:"DAV: getlastmodified"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

// davEntry is one PROPFIND response.
type davEntry struct {
	href, name, length, etag, modified string
	collection                         bool
}

func (e *env) propfind(p, depth string) map[string]davEntry {
	e.t.Helper()
	req := e.request("PROPFIND", p, "", strings.NewReader(`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`))
	if depth != "" {
		req.Header.Set("Depth", depth)
	}
	req.Header.Set("Content-Type", "application/xml")
	r := e.send(req).want(e.t, http.StatusMultiStatus, "PROPFIND "+p+" depth "+depth)
	if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
		e.t.Errorf("PROPFIND Content-Type = %q", ct)
	}
	var ms multistatus
	if err := xml.Unmarshal(r.body, &ms); err != nil {
		e.t.Fatalf("PROPFIND %s: %v\n%s", p, err, r.body)
	}
	out := map[string]davEntry{}
	for _, resp := range ms.Responses {
		if len(resp.Propstat) != 1 || !strings.Contains(resp.Propstat[0].Status, " 200 ") {
			e.t.Fatalf("PROPFIND %s: response %s has propstat %+v", p, resp.Href, resp.Propstat)
		}
		pr := resp.Propstat[0].Prop
		out[resp.Href] = davEntry{href: resp.Href, name: pr.DisplayName, length: pr.ContentLength, etag: pr.ETag,
			modified: pr.LastModified, collection: pr.ResourceType.Collection != nil}
	}
	return out
}

func TestDAVOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	for _, p := range []string{"/dav/", "/dav/r/"} {
		r := e.call(http.MethodOptions, p, "", nil).want(t, http.StatusOK, "OPTIONS "+p)
		if dav := r.header.Get("DAV"); !strings.Contains(dav, "1") {
			t.Errorf("OPTIONS %s: DAV header %q, want class 1", p, dav)
		}
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "PROPFIND") || !strings.Contains(allow, "PUT") {
			t.Errorf("OPTIONS %s: Allow %q", p, allow)
		}
	}
}

func TestDAVPropfind(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	e.createRepo("s")
	a := e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "aaa"))
	b := e.mustUpload("r", "b.rpm", buildRPM(t, "b", "2", "1", strings.Repeat("b", 500)))

	d0 := e.propfind("/dav/r/", "0")
	if len(d0) != 1 || !d0["/dav/r/"].collection {
		t.Errorf("depth 0 on /dav/r/: %+v, want the collection alone", d0)
	}

	d1 := e.propfind("/dav/r/", "1")
	if !d1["/dav/r/"].collection {
		t.Errorf("depth 1 on /dav/r/ lacks the collection itself: %+v", d1)
	}
	if len(d1) != 3 {
		t.Errorf("depth 1 on /dav/r/: %d responses, want the collection and 2 packages: %+v", len(d1), d1)
	}
	for _, p := range []pkgInfo{a, b} {
		href := "/dav/r/" + path.Base(p.Path)
		got, ok := d1[href]
		if !ok {
			t.Errorf("depth 1 lacks %s: %+v", href, d1)
			continue
		}
		if got.collection || got.length != strconv.FormatInt(p.Size, 10) || got.etag != `"`+p.SHA256+`"` || got.name != path.Base(p.Path) {
			t.Errorf("%s: %+v, want length %d etag %q", href, got, p.Size, p.SHA256)
		}
		if _, err := http.ParseTime(got.modified); err != nil {
			t.Errorf("%s: getlastmodified %q: %v", href, got.modified, err)
		}
		// The file itself.
		one := e.propfind(href, "0")
		if len(one) != 1 || one[href].etag != got.etag {
			t.Errorf("PROPFIND %s: %+v", href, one)
		}
		// And its bytes.
		r := e.get(href).want(t, http.StatusOK, "GET "+href)
		if sha256Hex(r.body) != p.SHA256 {
			t.Errorf("GET %s returned other bytes", href)
		}
	}
	// No Depth header means infinity for PROPFIND; a flat collection
	// answers the same as depth 1.
	if n := len(e.propfind("/dav/r/", "")); n != 3 {
		t.Errorf("PROPFIND without Depth: %d responses, want 3", n)
	}
	if n := len(e.propfind("/dav/s/", "1")); n != 1 {
		t.Errorf("empty repository s: %d responses, want 1", n)
	}
	// Clients also ask for a collection without its trailing slash.
	if d := e.propfind("/dav/r", "1"); len(d) != 3 || !d["/dav/r/"].collection {
		t.Errorf("PROPFIND /dav/r (no slash): %+v", d)
	}

	for _, p := range []string{"/dav/r/missing.rpm", "/dav/nope/"} {
		req := e.request("PROPFIND", p, "", nil)
		req.Header.Set("Depth", "1")
		e.send(req).want(t, http.StatusNotFound, "PROPFIND "+p).apiErr(t)
	}

	root := e.propfind("/dav/", "1")
	for _, href := range []string{"/dav/", "/dav/r/", "/dav/s/"} {
		if !root[href].collection {
			t.Errorf("PROPFIND /dav/ lacks collection %s: %+v", href, root)
		}
	}
	if len(root) != 3 {
		t.Errorf("PROPFIND /dav/: %+v, want /dav/ and two repositories", root)
	}
	if root := e.propfind("/dav/", "0"); len(root) != 1 {
		t.Errorf("PROPFIND /dav/ depth 0: %+v", root)
	}
}

func TestDAVPutDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "davpkg", "1.0", "1", "uploaded over webdav")
	write := e.token("dav-writer", "write")

	e.call(http.MethodPut, "/dav/r/davpkg.rpm", "", data).want(t, http.StatusUnauthorized, "PUT without a token")
	r := e.call(http.MethodPut, "/dav/r/davpkg.rpm", write, data).want(t, http.StatusCreated, "PUT")
	if r.header.Get("ETag") != `"`+sha256Hex(data)+`"` {
		t.Errorf("PUT ETag = %q, want the digest", r.header.Get("ETag"))
	}
	e.call(http.MethodPut, "/dav/r/davpkg.rpm", write, data).want(t, http.StatusNoContent, "PUT identical again")
	e.call(http.MethodPut, "/dav/r/davpkg.rpm", write, buildRPM(t, "davpkg", "1.0", "1", "other")).want(t, http.StatusConflict, "PUT other bytes, same NEVRA").apiErr(t)
	e.call(http.MethodPut, "/dav/r/sub/x.rpm", write, data).want(t, http.StatusBadRequest, "PUT into a sub-collection").apiErr(t)
	e.call(http.MethodPut, "/dav/r/bad.rpm", write, []byte("not an rpm at all")).want(t, http.StatusBadRequest, "PUT garbage").apiErr(t)

	pkgs := e.packages("r")
	if len(pkgs) != 1 || pkgs[0].SHA256 != sha256Hex(data) || pkgs[0].UploadedBy != "dav-writer" {
		t.Fatalf("packages after WebDAV PUTs: %+v", pkgs)
	}
	if !strings.Contains(e.primaryXML("r"), "<name>davpkg</name>") {
		t.Fatalf("primary.xml does not list the WebDAV upload")
	}
	href := "/dav/r/" + path.Base(pkgs[0].Path)
	if _, ok := e.propfind("/dav/r/", "1")[href]; !ok {
		t.Fatalf("PROPFIND does not list %s", href)
	}

	e.call("MKCOL", "/dav/r/newdir/", write, nil).want(t, http.StatusForbidden, "MKCOL")

	e.call(http.MethodDelete, href, "", nil).want(t, http.StatusUnauthorized, "DELETE without a token")
	e.call(http.MethodDelete, href, write, nil).want(t, http.StatusForbidden, "DELETE with a write token")
	e.call(http.MethodDelete, href, e.admin, nil).want(t, http.StatusNoContent, "DELETE as admin")
	e.call(http.MethodDelete, href, e.admin, nil).want(t, http.StatusNotFound, "DELETE again")

	if pkgs := e.packages("r"); len(pkgs) != 0 {
		t.Errorf("packages after DELETE: %+v", pkgs)
	}
	if strings.Contains(e.primaryXML("r"), "davpkg") {
		t.Errorf("primary.xml still lists the deleted package")
	}
	if _, ok := e.propfind("/dav/r/", "1")[href]; ok {
		t.Errorf("PROPFIND still lists %s", href)
	}
	// Older generations stay readable (a client may still hold their
	// index), but the current listing no longer shows the package.
	if r := e.get("/r/"); strings.Contains(string(r.body), path.Base(pkgs[0].Path)) && !strings.Contains(pkgs[0].Path, "/") {
		t.Errorf("listing of /r/ still shows the deleted package:\n%s", r.body)
	}

	// Deleted and uploaded again: back.
	e.call(http.MethodPut, "/dav/r/davpkg.rpm", write, data).want(t, http.StatusCreated, "PUT after DELETE")
	if r := e.get("/r/"+pkgs[0].Path).want(t, http.StatusOK, "GET the package again"); !bytes.Equal(r.body, data) {
		t.Errorf("package served after re-upload differs")
	}
}
