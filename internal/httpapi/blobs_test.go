package httpapi_test

import (
	"bytes"
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
