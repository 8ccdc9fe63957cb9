package proxy

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type readFromRecorder struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.src = src
	return io.Copy(r.ResponseRecorder, src)
}

// TestCountingWriterKeepsReadFrom: the byte-counting wrapper passes
// ReadFrom through (a cached file reaches sendfile) and still counts.
func TestCountingWriterKeepsReadFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(strings.Repeat("y", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	cw := &countingWriter{ResponseWriter: rec}
	if _, err := io.CopyN(cw, f, 5000); err != nil {
		t.Fatal(err)
	}
	if lr, ok := rec.src.(*io.LimitedReader); !ok {
		t.Fatalf("underlying ReadFrom got %T, want the *io.LimitedReader of the file", rec.src)
	} else if _, ok := lr.R.(*os.File); !ok {
		t.Fatalf("underlying ReadFrom got a reader of %T, want *os.File", lr.R)
	}
	if cw.n != 5000 || rec.Body.Len() != 5000 {
		t.Errorf("counted %d, wrote %d; want 5000", cw.n, rec.Body.Len())
	}
	plain := httptest.NewRecorder()
	cw = &countingWriter{ResponseWriter: plain}
	if _, err := io.Copy(cw, strings.NewReader("abcd")); err != nil || cw.n != 4 || plain.Body.String() != "abcd" {
		t.Fatalf("without an underlying ReadFrom: %v, counted %d, %q", err, cw.n, plain.Body.String())
	}
}
