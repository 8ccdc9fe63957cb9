package proxy

import (
	"strings"
	"testing"
)

func TestParseDesc(t *testing.T) {
	d := parseDesc([]byte("%FILENAME%\nfoo-1-1-x86_64.pkg.tar.zst\n\n%NAME%\nfoo\n\n%DEPENDS%\nglibc\nbash\n\n%PGPSIG%\niQ==\n"))
	if d["FILENAME"] != "foo-1-1-x86_64.pkg.tar.zst" || d["NAME"] != "foo" || d["DEPENDS"] != "glibc\nbash" || d["PGPSIG"] != "iQ==" {
		t.Errorf("parseDesc = %q", d)
	}
	for v, want := range map[string]string{"1.0-1": "|1.0|1", "2:1.0-3": "2|1.0|3", "1.0": "|1.0|", "1:2-3-4": "1|2-3|4"} {
		id := identity("n", []byte(v))
		if got := id.Epoch + "|" + id.Version + "|" + id.Release; got != want {
			t.Errorf("identity(%q) = %q, want %q", v, got, want)
		}
	}
}

// FuzzUnionArch feeds upstream bytes to the desc and version parsers of a
// union pacman proxy: no panic, no empty key, no value with a blank line.
func FuzzUnionArch(f *testing.F) {
	f.Add([]byte("%FILENAME%\nfoo.pkg.tar.zst\n\n%PGPSIG%\niQ==\n"))
	f.Add([]byte("%%\n%\n%A%\n\n\n%B%"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range parseDesc(b) {
			if k == "" || strings.Contains(v, "\n\n") {
				t.Fatalf("parseDesc: %q = %q", k, v)
			}
		}
		identity("n", b)
	})
}
