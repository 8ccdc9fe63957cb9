package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// TestGetBlob: a blob by digest needs a token; a malformed digest is a 400,
// an unknown one a 404; the bytes come back with the digest as ETag.
func TestGetBlob(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	data := buildRPM(t, "byblob", "1", "1", "fetched by digest")
	e.mustUpload("r", "byblob.rpm", data)
	d := string(blob.DigestOf(data))
	reader := e.token("peer", "read")

	e.get("/api/v1/blobs/"+d).want(t, http.StatusUnauthorized, "anonymous GET of a blob")
	r := e.call(http.MethodGet, "/api/v1/blobs/"+d, reader, nil).want(t, http.StatusOK, "GET of a blob")
	if !bytes.Equal(r.body, data) || r.header.Get("ETag") != `"`+d+`"` {
		t.Errorf("blob body %d bytes (want %d), ETag %q", len(r.body), len(data), r.header.Get("ETag"))
	}
	for _, bad := range []string{"abc", strings.ToUpper(d), d[:63] + "g", "..%2F..%2Fetc%2Fpasswd"} {
		r := e.call(http.MethodGet, "/api/v1/blobs/"+bad, reader, nil).want(t, http.StatusBadRequest, "GET of blob "+bad)
		if !strings.Contains(string(r.body), "digest") {
			t.Errorf("GET of blob %s: the error does not say what is wrong: %s", bad, r.body)
		}
	}
	e.call(http.MethodGet, "/api/v1/blobs/"+string(blob.DigestOf([]byte("never stored"))), reader, nil).
		want(t, http.StatusNotFound, "GET of an unknown blob")
}

// TestGetBlobs: POST /api/v1/blobs streams several blobs in order, each
// after a "DIGEST SIZE" line, and "DIGEST -1" for one the store lacks; it
// needs a token and refuses malformed or oversized requests with a 400
// that says why.
func TestGetBlobs(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	a := buildRPM(t, "batch-a", "1", "1", "first")
	b := buildRPM(t, "batch-b", "1", "1", "second")
	e.mustUpload("r", "batch-a.rpm", a)
	e.mustUpload("r", "batch-b.rpm", b)
	da, db := string(blob.DigestOf(a)), string(blob.DigestOf(b))
	missing := string(blob.DigestOf([]byte("never stored")))
	reader := e.token("peer", "read")

	req := da + "\n" + missing + "\n" + db + "\n" + da + "\n"
	e.call(http.MethodPost, "/api/v1/blobs", "", []byte(req)).want(t, http.StatusUnauthorized, "anonymous batch")
	r := e.call(http.MethodPost, "/api/v1/blobs", reader, []byte(req)).want(t, http.StatusOK, "batch")
	var want bytes.Buffer
	for _, p := range []struct {
		d    string
		data []byte
	}{{da, a}, {missing, nil}, {db, b}, {da, a}} {
		if p.data == nil {
			fmt.Fprintf(&want, "%s -1\n", p.d)
			continue
		}
		fmt.Fprintf(&want, "%s %d\n", p.d, len(p.data))
		want.Write(p.data)
	}
	if !bytes.Equal(r.body, want.Bytes()) {
		t.Errorf("batch body: %d bytes, want %d bytes in the documented layout", len(r.body), want.Len())
	}

	for name, body := range map[string]string{
		"empty":         "",
		"not a digest":  da + "\nabc\n",
		"upper case":    strings.ToUpper(da) + "\n",
		"too many":      strings.Repeat(da+"\n", 4097),
		"path, not one": "../../etc/passwd\n",
	} {
		r := e.call(http.MethodPost, "/api/v1/blobs", reader, []byte(body)).want(t, http.StatusBadRequest, "batch: "+name)
		if !strings.Contains(string(r.body), "digest") {
			t.Errorf("batch %s: the error does not say what is wrong: %s", name, r.body)
		}
	}
}
