package proxy

import (
	"bytes"
	"strings"
	"testing"
)

const clearsigned = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: upstream
Label: Up
Suite: stable
Date: Sat, 05 Dec 2026 10:00:00 UTC
Valid-Until: Sat, 12 Dec 2026 10:00:00 UTC
Acquire-By-Hash: yes
Description: first line
 second line
- -dashed: kept
MD5Sum:
 0123 10 main/binary-amd64/Packages
SHA256:
 abcd 10 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----

iQ==
-----END PGP SIGNATURE-----
`

// TestReleaseText: the signed text of an InRelease, dash-escaping undone;
// a Release is its own text; a clearsigned text without signature is
// refused. releaseHeader keeps the descriptive fields only.
func TestReleaseText(t *testing.T) {
	text, err := releaseText([]byte(clearsigned))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "Origin: upstream\n") || !strings.Contains(string(text), "\n-dashed: kept\n") || strings.Contains(string(text), "PGP") {
		t.Errorf("releaseText:\n%s", text)
	}
	plain := []byte("Origin: x\nSHA256:\n a 1 b\n")
	if got, err := releaseText(plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("releaseText of a Release: %q %v", got, err)
	}
	if _, err := releaseText([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n")); err == nil {
		t.Error("a clearsigned text without a signature was accepted")
	}
	h := releaseHeader(text)
	want := "Origin: upstream\nLabel: Up\nSuite: stable\nDescription: first line\n second line\n-dashed: kept\n"
	if h != want {
		t.Errorf("releaseHeader:\n%q\nwant\n%q", h, want)
	}
}

func TestDebIndexDir(t *testing.T) {
	for p, want := range map[string]string{
		"main/binary-amd64/Packages":                  "main|amd64",
		"main/binary-all/Packages.xz":                 "main|all",
		"contrib/binary-arm64/Packages.gz":            "contrib|arm64",
		"main/binary-amd64/Release":                   "",
		"main/source/Sources.xz":                      "",
		"main/i18n/Translation-en":                    "",
		"main/debian-installer/binary-amd64/Packages": "",
		"binary-amd64/Packages":                       "",
	} {
		_, comp, arch, ok := debIndexDir(p)
		got := ""
		if ok {
			got = comp + "|" + arch
		}
		if got != want {
			t.Errorf("debIndexDir(%q) = %q, want %q", p, got, want)
		}
	}
	if c := debComponent("pool/contrib/h/hello/hello_1_all.deb"); c != "contrib" {
		t.Errorf("debComponent = %q", c)
	}
	if c := debComponent("hello_1_all.deb"); c != "main" {
		t.Errorf("debComponent outside pool/ = %q", c)
	}
}

// FuzzUnionDeb feeds upstream bytes to the parsers of a union deb proxy:
// none panics, stanzas are bounded and hold no blank line, and the kept
// Release header never carries the fields the union writes itself.
func FuzzUnionDeb(f *testing.F) {
	f.Add([]byte(clearsigned))
	f.Add([]byte("Package: a\nSHA256: 00\n\n\nPackage: b\n Description\n"))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP SIGNATURE-----"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if text, err := releaseText(b); err == nil {
			for _, line := range strings.Split(releaseHeader(text), "\n") {
				name, _, _ := strings.Cut(strings.ToLower(line), ":")
				switch name {
				case "date", "valid-until", "acquire-by-hash", "sha256", "md5sum", "sha1", "sha512", "signed-by":
					t.Fatalf("releaseHeader kept %q", line)
				}
			}
			for _, line := range strings.Split(string(text), "\n") {
				debIndexDir(strings.TrimSpace(line))
			}
		}
		_ = eachStanza(bytes.NewReader(b), func(st []byte) error {
			if len(st) > maxStanza || bytes.Contains(st, []byte("\n\n")) || len(bytes.TrimSpace(st)) == 0 {
				t.Fatalf("stanza of %d bytes: %q", len(st), st)
			}
			return nil
		})
	})
}
