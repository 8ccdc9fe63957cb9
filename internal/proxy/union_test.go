package proxy

import (
	"bytes"
	"strings"
	"testing"
)

func TestCopyPackagesVerbatim(t *testing.T) {
	pk1 := `<package type="rpm"><name>a</name><checksum type="sha256" pkgid="YES">` + strings.Repeat("1", 64) + `</checksum><rpm:provides><rpm:entry name="a &amp; b"/></rpm:provides><location href="Packages/a.rpm"/></package>`
	pk2 := "<package type=\"rpm\">\n  <name>b</name>\n  <checksum type=\"sha256\" pkgid=\"YES\">" + strings.Repeat("2", 64) + "</checksum>\n  <description><![CDATA[x < y]]></description>\n</package>"
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
` + pk1 + "\n" + pk2 + "\n</metadata>"
	var out bytes.Buffer
	ids := map[string]bool{}
	if err := copyPackages(strings.NewReader(doc), &out, true, ids); err != nil {
		t.Fatal(err)
	}
	if want := pk1 + "\n" + pk2 + "\n"; out.String() != want {
		t.Errorf("copied:\n%s\nwant:\n%s", out.String(), want)
	}
	if !ids[strings.Repeat("1", 64)] || !ids[strings.Repeat("2", 64)] || len(ids) != 2 {
		t.Errorf("pkgids = %v", ids)
	}
	// filelists: pkgid attributes are not collected (primary's are).
	fl := `<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="1"><package pkgid="` + strings.Repeat("3", 64) + `" name="c" arch="noarch"><file>/x</file></package></filelists>`
	out.Reset()
	ids = map[string]bool{}
	if err := copyPackages(strings.NewReader(fl), &out, false, ids); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), `<package pkgid="`) || !strings.HasSuffix(out.String(), "</package>\n") || len(ids) != 0 {
		t.Errorf("filelists copy %q ids %v", out.String(), ids)
	}
	// Broken XML is an error, not a truncated merge.
	if err := copyPackages(strings.NewReader(`<metadata><package><name>x</package></metadata>`), &out, true, ids); err == nil {
		t.Error("mismatched tags accepted")
	}
}
