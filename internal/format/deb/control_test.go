package deb

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/format"
)

// writeParagraph writes p back by the rule Field documents.
func writeParagraph(p *Paragraph) string {
	var b strings.Builder
	for _, f := range p.Fields {
		if f.Value == "" || strings.HasPrefix(f.Value, "\n") {
			b.WriteString(f.Name + ":" + f.Value + "\n")
		} else {
			b.WriteString(f.Name + ": " + f.Value + "\n")
		}
	}
	return b.String()
}

func TestParseParagraph(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Field
	}{
		{"simple", "Package: foo\nVersion: 1.0\n", []Field{{"Package", "foo"}, {"Version", "1.0"}}},
		{"no final newline", "Package: foo", []Field{{"Package", "foo"}}},
		{"blank lines around", "\n\nPackage: foo\n\n\n", []Field{{"Package", "foo"}}},
		{"whitespace-only lines around", " \t\nPackage: foo\n\n \n", []Field{{"Package", "foo"}}},
		{"spaces trimmed", "Package: \t foo \t \n", []Field{{"Package", "foo"}}},
		{"no space after colon", "Package:foo\n", []Field{{"Package", "foo"}}},
		{"colon in value", "Homepage: https://example.com:8080/x\n", []Field{{"Homepage", "https://example.com:8080/x"}}},
		{"empty value", "Homepage:\nPackage: foo\n", []Field{{"Homepage", ""}, {"Package", "foo"}}},
		{
			"multi-line",
			"Description: short\n long line  \n .\n  verbatim\n\tTabbed\n",
			[]Field{{"Description", "short\n long line\n .\n  verbatim\n\tTabbed"}},
		},
		{
			"empty first line",
			"Conffiles:\n /etc/a 0123\n /etc/b 4567\n",
			[]Field{{"Conffiles", "\n /etc/a 0123\n /etc/b 4567"}},
		},
		{"odd but valid name", "X-Foo_Bar.2!~: v\n", []Field{{"X-Foo_Bar.2!~", "v"}}},
		{"utf-8", "Maintainer: José Müller <j@example.com>\n", []Field{{"Maintainer", "José Müller <j@example.com>"}}},
		{"DEL is not C0", "X: a\x7fb\n", []Field{{"X", "a\x7fb"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseParagraph([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Fields, tc.want) {
				t.Errorf("fields %q, want %q", p.Fields, tc.want)
			}
		})
	}
}

func TestParseParagraphErrors(t *testing.T) {
	long := strings.Repeat("n", MaxFieldNameLength+1)
	many := strings.Builder{}
	for i := 0; i <= MaxControlFields; i++ {
		fmt.Fprintf(&many, "F%d: v\n", i)
	}
	for _, tc := range []struct {
		name, in, want string
		tooLarge       bool
	}{
		{"empty", "", "no fields", false},
		{"only blank lines", "\n\n", "no fields", false},
		{"no colon", "Package: foo\nno colon here\n", "line 2: no colon", false},
		{"comment", "# comment\nPackage: foo\n", "line 1: comment lines are not allowed", false},
		{"comment after", "Package: foo\n# comment\n", "line 2: comment lines", false},
		{"duplicate", "Package: foo\nVersion: 1\nPACKAGE: bar\n", "line 3: duplicate field PACKAGE (first on line 1)", false},
		{"second paragraph", "Package: foo\n\nPackage: bar\n", "line 3: a second paragraph", false},
		{"second paragraph after whitespace line", "Package: foo\n\n \nPackage: bar\n", "line 4: a second paragraph", false},
		{"continuation first", " Package: foo\n", "line 1: continuation line without a field", false},
		{"continuation after blank", "Package: foo\n\n more\n", "line 3: a second paragraph", false},
		{"whitespace line in value", "Description: x\n \n more\n", "line 2: blank line in the value of field Description", false},
		{"tab line in value", "Description: x\n\t\n", "line 2: blank line in the value", false},
		{"crlf", "Package: foo\r\nVersion: 1\r\n", "line 1 ends with CRLF", false},
		{"lone cr", "Package: foo\rbar\n", "line 1: control character 0x0d", false},
		{"nul", "Package: foo\nVersion: 1\x00\n", "line 2: control character 0x00", false},
		{"escape", "Package: \x1b[31mred\n", "control character 0x1b", false},
		{"invalid utf-8", "Package: foo\nMaintainer: Jos\xe9\n", "line 2: invalid UTF-8", false},
		{"empty name", ": value\n", "line 1: empty field name", false},
		{"space in name", "Pack age: foo\n", `field name "Pack age" contains ' '`, false},
		{"dash name", "-Package: foo\n", `starts with '-'`, false},
		{"pgp armor", "-----BEGIN PGP SIGNED MESSAGE-----\n", "line 1: no colon", false},
		{"non-ascii name", "Päckage: foo\n", `contains 'ä'`, false},
		{"long name", long + ": v\n", "longer than 100 characters", false},
		{"too many fields", many.String(), "more than 1000 fields", true},
		{"too large", "X: " + strings.Repeat("x", MaxControlSize) + "\n", "exceeds 1048576 bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseParagraph([]byte(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "deb: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			kind := format.ErrInvalidPackage
			if tc.tooLarge {
				kind = format.ErrPackageTooLarge
			}
			if !errors.Is(err, kind) {
				t.Errorf("error %q does not wrap %v", err, kind)
			}
		})
	}
}

// TestParagraphRoundTrip checks that writing fields back as Field
// documents gives the input, once it is in normal form (no trailing
// whitespace, one space after the colon).
func TestParagraphRoundTrip(t *testing.T) {
	for _, in := range []string{
		"Package: foo\nVersion: 1:2.0-1\n",
		"Package: foo\nDescription: synopsis\n Long text that goes on\n .\n   verbatim line\n .\n\tlast\n",
		"Package: foo\nConffiles:\n /etc/foo.conf 0123456789abcdef\nEmpty:\nX-Tail: end\n",
		"Package: foo\nDepends: libc6 (>= 2.34),\n libfoo (>= 1) | libbar\n",
	} {
		p, err := ParseParagraph([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := writeParagraph(p); got != in {
			t.Errorf("wrote back\n%q\nwant\n%q", got, in)
		}
	}
}

func TestGet(t *testing.T) {
	p, err := ParseParagraph([]byte("Package: foo\nMulti-Arch: same\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("multi-arch") != "same" || p.Get("PACKAGE") != "foo" || p.Get("Missing") != "" {
		t.Errorf("Get gave %q %q %q", p.Get("multi-arch"), p.Get("PACKAGE"), p.Get("Missing"))
	}
	var nilP *Paragraph
	if nilP.Get("Package") != "" {
		t.Error("Get on nil paragraph")
	}
}

func TestCheckBinary(t *testing.T) {
	base := "Package: foo\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@example.com>\nDescription: short\n"
	valid := []string{
		base,
		base + "Installed-Size: 0\n",
		base + "Installed-Size: 123456\n",
		base + "Source: foo-src\n",
		base + "Source: libfoo (1:2.0-3)\n",
		"Package: g++\nVersion: 4:12.2.0-3\nArchitecture: all\nMaintainer: m\nDescription: d\n",
		"Package: a.b-c+d\nVersion: 0\nArchitecture: kfreebsd-amd64\nMaintainer: m\nDescription: d\n",
	}
	for _, in := range valid {
		p, err := ParseParagraph([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckBinary(p); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, tc := range []struct{ edit, want string }{
		{"Package", "missing field Package"},
		{"Version", "missing field Version"},
		{"Architecture", "missing field Architecture"},
		{"Maintainer", "missing field Maintainer"},
		{"Description", "missing field Description"},
		{"Package:", "field Package is empty"},
		{"Package: Foo", `invalid package name "Foo"`},
		{"Package: f", `invalid package name "f"`},
		{"Package: -foo", `invalid package name "-foo"`},
		{"Package: foo_bar", `invalid package name "foo_bar"`},
		{"Version: 1..:", `field Version: invalid version "1..:": epoch "1.." is not a number`},
		{"Version: abc", `upstream version "abc" does not start with a digit`},
		{"Architecture: amd 64", `field Architecture: invalid architecture "amd 64"`},
		{"Architecture: AMD64", `invalid architecture "AMD64"`},
		{"Architecture: amd64 arm64", `invalid architecture`},
		{"Maintainer: \t", "field Maintainer is empty"},
		{"Installed-Size: -1", `field Installed-Size: "-1" is not a size`},
		{"Installed-Size: 12k", `"12k" is not a size`},
		{"Installed-Size: +5", `"+5" is not a size`},
		{"Installed-Size: 99999999999999999999", `is not a size`},
		{"Installed-Size:", `"" is not a size`},
		{"Source: Foo", `field Source: invalid source package name "Foo"`},
		{"Source: foo 1.0", `field Source: "foo 1.0" is not "name" or "name (version)"`},
		{"Source: foo (1..:)", `field Source: invalid version "1..:"`},
		{"Source: foo (1.0) x", `is not "name" or "name (version)"`},
	} {
		name, _, _ := strings.Cut(tc.edit, ":")
		var lines []string
		for _, l := range strings.Split(strings.TrimSuffix(base, "\n"), "\n") {
			if !strings.HasPrefix(l, name+":") {
				lines = append(lines, l)
			}
		}
		if strings.Contains(tc.edit, ":") {
			lines = append(lines, tc.edit)
		}
		p, err := ParseParagraph([]byte(strings.Join(lines, "\n") + "\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.edit, err)
		}
		err = CheckBinary(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, format.ErrInvalidPackage) {
			t.Errorf("%q: error %v, want it to contain %q", tc.edit, err, tc.want)
		}
	}
}

func FuzzParseParagraph(f *testing.F) {
	for _, s := range []string{
		"Package: foo\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@example.com>\nDescription: short\n long\n .\n more\n",
		"Conffiles:\n /etc/a 01\n",
		"\n\nA: b\n\n",
		"A: b\n \nC: d\n",
		"A: b\r\n",
		"# c\nA: b\n",
		"A: b\n\nC: d\n",
		"A:\n\tb\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseParagraph(b)
		if err != nil {
			if !errors.Is(err, format.ErrInvalidPackage) && !errors.Is(err, format.ErrPackageTooLarge) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if len(p.Fields) == 0 || len(p.Fields) > MaxControlFields {
			t.Fatalf("%d fields", len(p.Fields))
		}
		for _, f := range p.Fields {
			if strings.Contains(f.Value, "\n\n") || strings.HasSuffix(f.Value, "\n") {
				t.Fatalf("field %s has an empty line: %q", f.Name, f.Value)
			}
			for _, l := range strings.Split(f.Value, "\n")[1:] {
				if l == "" || (l[0] != ' ' && l[0] != '\t') || strings.TrimRight(l, " \t") != l {
					t.Fatalf("field %s has continuation line %q", f.Name, l)
				}
			}
		}
		// What is written back parses to the same fields.
		out := writeParagraph(p)
		q, err := ParseParagraph([]byte(out))
		if err != nil {
			t.Fatalf("written back %q: %v", out, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed %q into %q", p.Fields, q.Fields)
		}
		CheckBinary(p)
	})
}
