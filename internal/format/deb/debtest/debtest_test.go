package debtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// dpkgDeb runs the real dpkg-deb with an action on a package file and
// more arguments; it skips the test when dpkg-deb is missing, unless
// PACKYARD_REQUIRE_REAL=1.
func dpkgDeb(t *testing.T, pkg []byte, action string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("dpkg-deb")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("dpkg-deb not found and PACKYARD_REQUIRE_REAL=1: %v", err)
		}
		t.Skipf("dpkg-deb not found: %v", err)
	}
	path := filepath.Join(t.TempDir(), "p.deb")
	if err := os.WriteFile(path, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{action, path}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s %v: %v\n%s", action, args, err, stderr.String())
	}
	return string(out)
}

func TestBuildReadByDpkgDeb(t *testing.T) {
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		s := Corpus(4, 2)[3]
		s.Compression = comp
		b, err := Build(s)
		if err != nil {
			t.Fatal(err)
		}
		info := dpkgDeb(t, b, "--info")
		if !strings.Contains(info, "new Debian package, version 2.0.") || !strings.Contains(info, " Package: "+s.Package+"\n") {
			t.Errorf("%s: dpkg-deb --info:\n%s", comp, info)
		}
		// dpkg-deb prints the control file as it is.
		if got := dpkgDeb(t, b, "--field"); got != string(s.Control()) {
			t.Errorf("%s: dpkg-deb --field:\n%s\nwant\n%s", comp, got, s.Control())
		}
		list := dpkgDeb(t, b, "--contents")
		for _, want := range []string{"./usr/bin/" + s.Package + "\n", "./var/lib/" + s.Package + "/\n", "-rwxr-xr-x root/root"} {
			if !strings.Contains(list, want) {
				t.Errorf("%s: dpkg-deb --contents lacks %q:\n%s", comp, want, list)
			}
		}
		if sums := dpkgDeb(t, b, "--info", "md5sums"); !strings.Contains(sums, "  usr/bin/"+s.Package+"\n") {
			t.Errorf("%s: md5sums:\n%s", comp, sums)
		}
	}
}

// TestBuildDpkg checks that dpkg-deb builds the same control file.
func TestBuildDpkg(t *testing.T) {
	s := Corpus(2, 2)[1]
	p, err := BuildDpkg(filepath.Join(t.TempDir(), "new", "dir"), s)
	if err != nil {
		if _, lookErr := exec.LookPath("dpkg-deb"); lookErr != nil && os.Getenv("PACKYARD_REQUIRE_REAL") != "1" {
			t.Skipf("dpkg-deb not found: %v", lookErr)
		}
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, ".deb") {
		t.Errorf("path %q", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := dpkgDeb(t, b, "--field"); got != string(s.Control()) {
		t.Errorf("dpkg-deb --field:\n%s\nwant\n%s", got, s.Control())
	}
}

func TestControl(t *testing.T) {
	s := Spec{
		Package: "demo", Version: "1:2.0-1", Architecture: "amd64", Maintainer: "M <m@example.com>",
		Description: "short\nfirst line\n\n  verbatim",
		Depends:     "libc6 (>= 2.34) | libc6.1", InstalledSize: 12, Homepage: "https://example.com",
	}
	want := "Package: demo\nVersion: 1:2.0-1\nArchitecture: amd64\nMaintainer: M <m@example.com>\nInstalled-Size: 12\n" +
		"Depends: libc6 (>= 2.34) | libc6.1\nHomepage: https://example.com\n" +
		"Description: short\n first line\n .\n   verbatim\n"
	if got := string(s.Control()); got != want {
		t.Errorf("Control() =\n%s\nwant\n%s", got, want)
	}
}

func TestCorpus(t *testing.T) {
	a, b := Corpus(50, 7), Corpus(50, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Corpus is not deterministic")
	}
	kinds := map[string]bool{}
	for i, s := range a {
		if want := fmt.Sprintf("pkg-%05d", i); s.Package != want {
			t.Errorf("spec %d is named %q, want %q", i, s.Package, want)
		}
		x, err := Build(s)
		if err != nil {
			t.Fatalf("Build(%s): %v", s.Package, err)
		}
		y, _ := Build(s)
		if !bytes.Equal(x, y) {
			t.Errorf("Build(%s) is not deterministic", s.Package)
		}
		kinds["arch="+s.Architecture] = true
		kinds["comp="+s.Compression] = true
		kinds["lib-source"] = kinds["lib-source"] || strings.HasPrefix(s.Source, "lib")
		kinds["versioned-source"] = kinds["versioned-source"] || strings.Contains(s.Source, " (")
		kinds["epoch"] = kinds["epoch"] || strings.Contains(s.Version, ":")
		kinds["tilde"] = kinds["tilde"] || strings.Contains(s.Version, "~")
		kinds["alternatives"] = kinds["alternatives"] || strings.Contains(s.Depends, " | ")
		kinds["multi-arch"] = kinds["multi-arch"] || s.MultiArch != ""
	}
	for _, k := range []string{"arch=amd64", "arch=all", "arch=arm64", "comp=gz", "comp=xz", "comp=zst", "lib-source", "versioned-source", "epoch", "tilde", "alternatives", "multi-arch"} {
		if !kinds[k] {
			t.Errorf("corpus lacks %s", k)
		}
	}
	if c := Corpus(5, 8); reflect.DeepEqual(c, a[:5]) {
		t.Error("different seeds gave the same corpus")
	}
}

func TestMalformedCorpus(t *testing.T) {
	cases := Malformed(Corpus(1, 1)[0])
	if len(cases) < 50 {
		t.Errorf("only %d malformed cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("duplicate case %q", c.Name)
		}
		seen[c.Name] = true
		if c.Name != "empty" && len(c.Data) == 0 {
			t.Errorf("%s is empty", c.Name)
		}
	}
}
