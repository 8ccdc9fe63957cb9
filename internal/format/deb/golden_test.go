package deb_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/deb/debtest"
)

// splitStanzas parses a Packages file into paragraphs.
func splitStanzas(t *testing.T, b []byte) []*deb.Paragraph {
	t.Helper()
	var out []*deb.Paragraph
	for _, chunk := range bytes.Split(b, []byte("\n\n")) {
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}
		p, err := deb.ParseParagraph(append(chunk, '\n'))
		if err != nil {
			t.Fatalf("stanza %q: %v", chunk, err)
		}
		out = append(out, p)
	}
	return out
}

func fieldMap(p *deb.Paragraph) map[string]string {
	m := map[string]string{}
	for _, f := range p.Fields {
		m[f.Name] = f.Value
	}
	return m
}

func key(p *deb.Paragraph) string {
	return p.Get("Package") + " " + p.Get("Version") + " " + p.Get("Architecture")
}

// TestGoldenAgainstAptFtparchive builds a corpus with the real dpkg-deb,
// lays it out in packyard's pool, and compares packyard's Packages stanzas
// with what apt-ftparchive writes for the same files: the same fields with
// the same values (field order aside).
func TestGoldenAgainstAptFtparchive(t *testing.T) {
	realTool(t, "dpkg-deb")
	ftp := realTool(t, "apt-ftparchive")
	f := deb.New()
	root := t.TempDir()
	build := t.TempDir()
	var ours bytes.Buffer
	specs := debtest.Corpus(60, 7)
	for i, s := range specs {
		p, err := debtest.BuildDpkg(filepath.Join(build, s.Package), s)
		if err != nil {
			t.Fatalf("dpkg-deb %s: %v", s.Package, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		params := format.UploadParams{"distribution": "stable", "component": []string{"main", "contrib"}[i%2]}
		pkg, err := f.Parse(bytes.NewReader(data), filepath.Base(p), params)
		if err != nil {
			t.Fatalf("Parse %s: %v", p, err)
		}
		fi := format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data)), Time: time.Now()}
		frags, err := f.Render(pkg, fi)
		if err != nil {
			t.Fatal(err)
		}
		ours.Write(frags[deb.FragPackages])
		dst := filepath.Join(root, pkg.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Debian's archive lists MD5sum and SHA256 in Packages, as packyard
	// does; apt-ftparchive adds SHA1 and SHA512 unless told not to.
	cmd := exec.Command(ftp, "-o", "APT::FTPArchive::SHA1=false", "-o", "APT::FTPArchive::SHA512=false", "packages", "pool")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	theirs, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-ftparchive packages: %v\n%s", err, stderr.String())
	}
	want := map[string]map[string]string{}
	for _, p := range splitStanzas(t, theirs) {
		want[key(p)] = fieldMap(p)
	}
	got := splitStanzas(t, ours.Bytes())
	if len(got) != len(specs) || len(want) != len(specs) {
		t.Fatalf("stanzas: packyard %d, apt-ftparchive %d, want %d", len(got), len(want), len(specs))
	}
	for _, p := range got {
		w, ok := want[key(p)]
		if !ok {
			t.Errorf("%s: not in apt-ftparchive's output", key(p))
			continue
		}
		g := fieldMap(p)
		var names []string
		for n := range w {
			names = append(names, n)
		}
		for n := range g {
			if _, ok := w[n]; !ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if g[n] != w[n] {
				t.Errorf("%s: field %s: packyard %q, apt-ftparchive %q", key(p), n, g[n], w[n])
			}
		}
	}
	if t.Failed() {
		t.Logf("first apt-ftparchive stanza:\n%s", strings.SplitN(string(theirs), "\n\n", 2)[0])
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
