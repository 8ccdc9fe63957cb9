package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFromRecorder is a ResponseWriter with ReadFrom, as net/http's own
// (which hands an *os.File to sendfile): it records what it was given.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.src = src
	return io.Copy(r.ResponseRecorder, src)
}

// TestStatusWriterKeepsReadFrom: the status-recording wrapper passes
// io.Copy's ReadFrom through, so a local file served by http.ServeContent
// still reaches sendfile; without ReadFrom below, it copies.
func TestStatusWriterKeepsReadFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	sw := &statusWriter{ResponseWriter: rec, code: http.StatusOK}
	if n, err := io.CopyN(sw, f, 4096); n != 4096 || err != nil {
		t.Fatalf("CopyN: %d, %v", n, err)
	}
	lr, ok := rec.src.(*io.LimitedReader)
	if !ok {
		t.Fatalf("underlying ReadFrom got %T, want the *io.LimitedReader of the file", rec.src)
	}
	if _, ok := lr.R.(*os.File); !ok {
		t.Fatalf("underlying ReadFrom got a reader of %T, want *os.File", lr.R)
	}
	if !sw.wroteHeader || rec.Body.Len() != 4096 {
		t.Errorf("wroteHeader %v, body %d bytes", sw.wroteHeader, rec.Body.Len())
	}

	plain := httptest.NewRecorder()
	sw = &statusWriter{ResponseWriter: plain, code: http.StatusOK}
	if n, err := io.Copy(sw, strings.NewReader("abc")); n != 3 || err != nil || plain.Body.String() != "abc" {
		t.Fatalf("copy without an underlying ReadFrom: %d, %v, %q", n, err, plain.Body.String())
	}
}
