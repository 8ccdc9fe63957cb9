package arch_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/arch/archtest"
)

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("%s is required (PACKYARD_REQUIRE_REAL=1) but not found: %v", name, err)
		}
		t.Skipf("%s not found (%v)", name, err)
	}
	return p
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tarFiles returns the regular files of a tar stream by name.
func tarFiles(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(b)
	}
}

// TestGoldenAgainstRepoAdd compares packyard's desc and files entries with
// what repo-add writes into NAME.files.tar.gz for the same packages: the
// same entries, byte for byte.
func TestGoldenAgainstRepoAdd(t *testing.T) {
	repoAdd := lookTool(t, "repo-add")
	f := arch.New()
	dir := t.TempDir()
	ours := map[string]string{}
	var paths []string
	for _, s := range archtest.Corpus(40, 3) {
		data, err := archtest.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, archtest.FileName(s))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		pkg, err := f.Parse(bytes.NewReader(data), filepath.Base(p), format.UploadParams{})
		if err != nil {
			t.Fatalf("Parse %s: %v", p, err)
		}
		frags, err := f.Render(pkg, format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data)), Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for name, body := range tarFiles(t, bytes.NewReader(frags[arch.FragFiles])) {
			ours[name] = body
		}
	}
	db := filepath.Join(t.TempDir(), "golden.db.tar.gz")
	cmd := exec.Command(repoAdd, append([]string{"-q", db}, paths...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("repo-add: %v\n%s", err, out)
	}
	files, err := os.Open(strings.TrimSuffix(db, ".db.tar.gz") + ".files.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	zr, err := gzip.NewReader(files)
	if err != nil {
		t.Fatal(err)
	}
	theirs := tarFiles(t, zr)
	if len(theirs) != len(ours) || len(ours) != 80 {
		t.Fatalf("entries: packyard %d, repo-add %d, want 80", len(ours), len(theirs))
	}
	for name, want := range theirs {
		if got := ours[name]; got != want {
			t.Errorf("%s differs:\npackyard:\n%s\nrepo-add:\n%s", name, got, want)
		}
	}
}
