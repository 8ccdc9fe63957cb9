package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadSpecs: a store spec that names no backend, or an incomplete one,
// is refused with a message saying what is expected, and creates nothing;
// a database password never appears in it.
func TestBadSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{"", "mysql://root@db/packyard", "sqlite:", "/var/lib/packyard/packyard.db", "postgres:/x"} {
		_, err := OpenMeta(t.Context(), spec)
		if err == nil || !strings.Contains(err.Error(), "sqlite:") {
			t.Errorf("OpenMeta(%q) = %v, want an error naming the accepted forms", spec, err)
		}
	}
	if _, err := OpenMeta(t.Context(), "mysql://root:hunter2@db/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("OpenMeta with a password: %v", err)
	}
	for _, spec := range []string{"", "file:", "ftp://host/blobs", filepath.Join(dir, "blobs"), "s3://", "s3://bucket?endpoint=ftp://x"} {
		if _, err := OpenBlobs(t.Context(), spec, BlobOptions{}); err == nil {
			t.Errorf("OpenBlobs(%q) succeeded", spec)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused specs left %d entries behind", len(ents))
	}
	if got := Redact("postgres://packyard:s3cret@db:5432/p?sslmode=require"); strings.Contains(got, "s3cret") || !strings.Contains(got, "packyard:***@db") {
		t.Errorf("Redact = %q", got)
	}
}
