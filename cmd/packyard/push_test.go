package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/packyard/packyard/internal/format/arch/archtest"
)

// writeArchPackage builds a pacman package into dir and returns its path
// and bytes.
func writeArchPackage(t *testing.T, dir, name, archName string) (string, []byte) {
	t.Helper()
	s := archtest.Spec{
		Name: name, Version: "1.0-1", Arch: archName, Desc: "CLI test package", Licenses: []string{"MIT"},
		Files: []archtest.File{{Path: "usr/share/" + name + "/x", Body: []byte(name)}},
	}
	b, err := archtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, archtest.FileName(s), b), b
}

// archDescs downloads ARCH/REPO.db from the server and returns the desc
// of each package by directory name.
func archDescs(t *testing.T, s *server, repoName, archName string) map[string]string {
	t.Helper()
	resp, err := http.Get(s.url + "/" + repoName + "/" + archName + "/" + repoName + ".db")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s.db: HTTP %d", repoName, resp.StatusCode)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if dir, ok := strings.CutSuffix(h.Name, "/desc"); ok {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[dir] = string(b)
		}
	}
}

// TestPushArchSignature: push sends FILE.sig beside a pacman package as
// its signature (it lands in the database's %PGPSIG%), and a .sig named
// on the command line next to its package, however its path is spelled,
// is not uploaded as a package.
func TestPushArchSignature(t *testing.T) {
	s := newServer(t)
	s.run(t, "repo", "create", "pkgs", "--format", "arch").must(t, "repo create")
	dir := t.TempDir()
	key, err := openpgp.NewEntity("packager", "", "packager@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	hello, helloData := writeArchPackage(t, dir, "hello", "x86_64")
	tool, toolData := writeArchPackage(t, dir, "tool", "x86_64")
	data, _ := writeArchPackage(t, dir, "data", "any")
	sigs := map[string]string{}
	for p, b := range map[string][]byte{hello: helloData, tool: toolData} {
		var sig bytes.Buffer
		if err := openpgp.DetachSign(&sig, key, bytes.NewReader(b), nil); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(p)+".sig", sig.Bytes())
		sigs[filepath.Base(p)] = base64.StdEncoding.EncodeToString(sig.Bytes())
	}

	// The signature of hello is named too (as a shell glob names it),
	// that of tool through another spelling of its directory; data has
	// none.
	other := dir + "/./" + filepath.Base(tool) + ".sig"
	r := s.run(t, "push", "pkgs", hello, hello+".sig", tool, other, data).must(t, "push")
	if !strings.HasPrefix(r.stdout, "3 uploaded (") || !strings.Contains(r.stdout, "0 failed") {
		t.Errorf("push summary %q, want the 3 packages uploaded and no failure\n%s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, ".sig ->") || strings.Contains(r.stderr, "FAILED") {
		t.Errorf("a signature was pushed as a package:\n%s", r.stderr)
	}

	descs := archDescs(t, s, "pkgs", "x86_64")
	for _, name := range []string{"hello", "tool"} {
		desc, ok := descs[name+"-1.0-1"]
		want := "%PGPSIG%\n" + sigs[name+"-1.0-1-x86_64.pkg.tar.zst"] + "\n"
		if !ok || !strings.Contains(desc, want) {
			t.Errorf("%s's desc lacks its signature %q:\n%s", name, want, desc)
		}
	}
	if desc, ok := descs["data-1.0-1"]; !ok || strings.Contains(desc, "%PGPSIG%") {
		t.Errorf("data (no .sig beside it) in the database %v, desc:\n%s", ok, desc)
	}
	if len(descs) != 3 {
		t.Errorf("the database holds %d packages, want 3: %v", len(descs), descs)
	}
}
