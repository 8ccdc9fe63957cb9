package upstream

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

const repomd = `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <checksum type="sha256">1111111111111111111111111111111111111111111111111111111111111111</checksum>
    <open-checksum type="sha256">2222222222222222222222222222222222222222222222222222222222222222</open-checksum>
    <location href="repodata/1111-primary.xml.gz"/>
    <timestamp>1700000000</timestamp>
    <size>123</size>
    <open-size>456</open-size>
  </data>
  <data type="filelists">
    <checksum type="sha256">3333333333333333333333333333333333333333333333333333333333333333</checksum>
    <location href="repodata/3333-filelists.xml.gz"/>
    <size>77</size>
  </data>
</repomd>`

func TestParseRepomd(t *testing.T) {
	files, err := ParseRepomd([]byte(repomd))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Type != "primary" || files[0].Path != "repodata/1111-primary.xml.gz" || files[0].Size != 123 ||
		files[0].SHA256 != strings.Repeat("1", 64) || files[1].Type != "filelists" {
		t.Fatalf("files = %+v", files)
	}
	for name, bad := range map[string]string{
		"sha1":      strings.Replace(repomd, `<checksum type="sha256">1111`, `<checksum type="sha">1111`, 1),
		"escape":    strings.Replace(repomd, "repodata/1111-primary", "../1111-primary", 1),
		"absolute":  strings.Replace(repomd, "repodata/1111-primary", "/etc/1111-primary", 1),
		"url":       strings.Replace(repomd, "repodata/1111-primary", "http://evil/1111-primary", 1),
		"xml:base":  strings.Replace(repomd, `<location href="repodata/1111`, `<location xml:base="http://elsewhere/" href="repodata/1111`, 1),
		"no data":   `<repomd></repomd>`,
		"not xml":   "hello",
		"other doc": `<metadata><data type="primary"/></metadata>`,
	} {
		if _, err := ParseRepomd([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

const primary = `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>hello</name>
  <arch>x86_64</arch>
  <version epoch="1" ver="2.0" rel="3"/>
  <checksum type="sha256" pkgid="YES">aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</checksum>
  <summary>hi &amp; bye</summary>
  <size package="1234" installed="5678" archive="9999"/>
  <location href="Packages/h/hello-2.0-3.x86_64.rpm"/>
  <format><rpm:license>MIT</rpm:license><rpm:provides><rpm:entry name="hello" flags="EQ" epoch="1" ver="2.0" rel="3"/></rpm:provides></format>
</package>
<package type="rpm">
  <name>tool</name>
  <arch>noarch</arch>
  <version epoch="0" ver="1" rel="1"/>
  <checksum type="sha256" pkgid="YES">bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb</checksum>
  <size package="10" installed="20" archive="30"/>
  <location href="tool-1-1.noarch.rpm"/>
</package>
</metadata>`

func scanAll(t *testing.T, scan func(io.Reader, func(Entry) error) error, in string) ([]Entry, error) {
	t.Helper()
	var out []Entry
	err := scan(strings.NewReader(in), func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

func TestScanPrimary(t *testing.T) {
	es, err := scanAll(t, ScanPrimary, primary)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "hello", Version: "1:2.0-3", Arch: "x86_64", Path: "Packages/h/hello-2.0-3.x86_64.rpm", SHA256: strings.Repeat("a", 64), Size: 1234},
		{Name: "tool", Version: "1-1", Arch: "noarch", Path: "tool-1-1.noarch.rpm", SHA256: strings.Repeat("b", 64), Size: 10},
	}
	if len(es) != 2 || es[0].Name != want[0].Name || es[0].Version != want[0].Version || es[0].Path != want[0].Path || es[0].Size != 1234 ||
		es[0].SHA256 != want[0].SHA256 || es[1].Version != want[1].Version || es[1].Arch != "noarch" {
		t.Fatalf("entries = %+v", es)
	}
	for name, bad := range map[string]string{
		"escape":      strings.Replace(primary, "tool-1-1.noarch.rpm", "../../etc/passwd", 1),
		"no checksum": strings.Replace(primary, `<checksum type="sha256" pkgid="YES">bbbb`, `<checksum type="md5" pkgid="YES">bbbb`, 1),
		"truncated":   primary[:len(primary)/2],
		"base":        strings.Replace(primary, `<location href="tool`, `<location xml:base="http://x/" href="tool`, 1),
		"empty":       "",
	} {
		if _, err := scanAll(t, ScanPrimary, bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// One huge text node is refused before it is held in memory.
	huge := strings.Replace(primary, "hi &amp; bye", strings.Repeat("x", maxEntry+10), 1)
	if _, err := scanAll(t, ScanPrimary, huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge token: err = %v, want ErrTooLarge", err)
	}
}

const release = `Origin: Debian
Suite: stable
Codename: bookworm
Architectures: amd64 arm64 all
Components: main contrib
Acquire-By-Hash: yes
MD5Sum:
 d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages
SHA256:
 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc 1000 main/binary-amd64/Packages
 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd 300 main/binary-amd64/Packages.xz
`

func TestParseRelease(t *testing.T) {
	rel, err := ParseRelease([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	if rel.Suite != "stable" || rel.Codename != "bookworm" || len(rel.Components) != 2 || len(rel.Architectures) != 3 || !rel.AcquireByHash ||
		len(rel.Files) != 2 || rel.Files[1].Path != "main/binary-amd64/Packages.xz" || rel.Files[1].Size != 300 {
		t.Fatalf("release = %+v", rel)
	}
	for name, bad := range map[string]string{
		"escape":  strings.Replace(release, "main/binary-amd64/Packages.xz", "../../x", 1),
		"no size": strings.Replace(release, " 300 ", " x ", 1),
		"no hash": "Suite: stable\n",
		"garbage": "Suite stable\n",
	} {
		if _, err := ParseRelease([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

const packages = `Package: hello
Version: 1.0-1
Architecture: amd64
Description: hi
 more text: with a colon
Filename: pool/main/h/hello/hello_1.0-1_amd64.deb
Size: 1234
SHA256: eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee

Package: tool
Version: 2
Architecture: all
Filename: pool/main/t/tool/tool_2_all.deb
Size: 1
SHA256: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
`

func TestScanPackages(t *testing.T) {
	es, err := scanAll(t, ScanPackages, packages)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "hello" || es[0].Size != 1234 || es[0].Path != "pool/main/h/hello/hello_1.0-1_amd64.deb" || es[1].Arch != "all" {
		t.Fatalf("entries = %+v", es)
	}
	for name, bad := range map[string]string{
		"escape":  strings.Replace(packages, "pool/main/t/tool/tool_2_all.deb", "/etc/passwd", 1),
		"no sha":  strings.Replace(packages, "SHA256: ffff", "MD5sum: ffff", 1),
		"no name": strings.Replace(packages, "Package: tool\n", "", 1),
		"garbage": "Package hello\n",
	} {
		if _, err := scanAll(t, ScanPackages, bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func archDB(t testing.TB, descs map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	tw := tar.NewWriter(z)
	for dir, desc := range descs {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/desc", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(desc))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(desc)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScanArchDB(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString([]byte{0x88, 0x75, 1, 2, 3})
	desc := "%FILENAME%\ntool-1.0-1-x86_64.pkg.tar.zst\n\n%NAME%\ntool\n\n%VERSION%\n1.0-1\n\n%CSIZE%\n42\n\n%SHA256SUM%\n" +
		strings.Repeat("9", 64) + "\n\n%PGPSIG%\n" + sig + "\n\n%ARCH%\nx86_64\n\n"
	z, err := Decompress(bytes.NewReader(archDB(t, map[string]string{"tool-1.0-1": desc})))
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	if err := ScanArchDB(z, func(e Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "tool" || es[0].Path != "tool-1.0-1-x86_64.pkg.tar.zst" || es[0].Size != 42 || len(es[0].Signature) != 5 || es[0].Arch != "x86_64" {
		t.Fatalf("entries = %+v", es)
	}
	for name, bad := range map[string]string{
		"slash":   strings.Replace(desc, "tool-1.0-1-x86_64.pkg.tar.zst", "../tool.pkg.tar.zst", 1),
		"no sum":  strings.Replace(desc, "%SHA256SUM%", "%MD5SUM%", 1),
		"bad sig": strings.Replace(desc, sig, "!!!", 1),
	} {
		z, _ := Decompress(bytes.NewReader(archDB(t, map[string]string{"tool-1.0-1": bad})))
		if err := ScanArchDB(z, func(Entry) error { return nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := ScanArchDB(strings.NewReader("not a tar"), func(Entry) error { return nil }); err == nil {
		t.Errorf("not a tar: no error")
	}
}

func TestCheckPath(t *testing.T) {
	for _, ok := range []string{"a", "repodata/x.xml.gz", "pool/main/h/hello_1.0_amd64.deb"} {
		if err := CheckPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/../b", "..", "./a", "a//b", "a\\b", "a\x00", "http://x/y", "a?b", "a/"} {
		if err := CheckPath(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// Fuzz targets: every parser must return an error or entries with safe
// paths, never panic, whatever the bytes.

func checkEntry(t *testing.T, e Entry) {
	if err := CheckPath(e.Path); err != nil {
		t.Fatalf("entry with unsafe path %q: %v", e.Path, err)
	}
	if !isHex64(e.SHA256) {
		t.Fatalf("entry without a sha256: %+v", e)
	}
}

func FuzzParseRepomd(f *testing.F) {
	f.Add([]byte(repomd))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := ParseRepomd(b)
		for _, fl := range files {
			if err == nil && (CheckPath(fl.Path) != nil || !isHex64(fl.SHA256)) {
				t.Fatalf("unsafe file %+v", fl)
			}
		}
	})
}

func FuzzScanPrimary(f *testing.F) {
	f.Add([]byte(primary))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ScanPrimary(bytes.NewReader(b), func(e Entry) error { checkEntry(t, e); return nil })
	})
}

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte(release))
	f.Fuzz(func(t *testing.T, b []byte) {
		rel, err := ParseRelease(b)
		if err == nil {
			for _, fl := range rel.Files {
				if CheckPath(fl.Path) != nil {
					t.Fatalf("unsafe file %+v", fl)
				}
			}
		}
	})
}

func FuzzScanPackages(f *testing.F) {
	f.Add([]byte(packages))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ScanPackages(bytes.NewReader(b), func(e Entry) error { checkEntry(t, e); return nil })
	})
}

func FuzzScanArchDB(f *testing.F) {
	f.Add(archDB(f, map[string]string{"a-1-1": "%FILENAME%\na-1-1-any.pkg.tar.zst\n\n%NAME%\na\n\n%SHA256SUM%\n" + strings.Repeat("1", 64) + "\n"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		z, err := Decompress(bytes.NewReader(b))
		if err != nil {
			return
		}
		defer z.Close()
		_ = ScanArchDB(z, func(e Entry) error {
			checkEntry(t, e)
			if strings.Contains(e.Path, "/") {
				t.Fatalf("pacman file name with a slash: %q", e.Path)
			}
			return nil
		})
	})
}
